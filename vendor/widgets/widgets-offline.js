// filterbook: make the vendored @jupyter-widgets/html-manager work with no CDN.
// Loaded after require.js and before embed-amd.js (see nb_ipywidgets_js in _config.yml).
(function () {
  // The folder of this file is the folder of embed-amd.js and of its font files.
  var base = new URL(".", document.currentScript.src).href.replace(/\/$/, "");
  // html-manager derives its font URLs from each AMD module's uri: map the module ids here,
  // or the browser asks for /@jupyter-widgets/... and gets a 404.
  require.config({
    paths: { "@jupyter-widgets/html-manager/dist": base, "@jupyter-widgets": base },
  });
  // Stop the theme's Font Awesome (SVG+JS) from replacing widget <i class="fa ..."> icons:
  // a replaced Play icon throws on every value change and breaks the jslink chain.
  window.FontAwesomeConfig = Object.assign(window.FontAwesomeConfig || {}, {
    observeMutations: false,
    mutateApproach: "sync",
  });
  // html-manager typesets widget labels with the MathJax 2 API, MathJax.Hub.Queue(["Typeset", MathJax.Hub, el]),
  // but the book loads MathJax 3, which has no Hub: every widget label would throw. MathJax 3 replaces
  // window.MathJax when it starts, so give every object assigned there a small Hub that calls MathJax 3.
  function addHub(M) {
    if (!M || typeof M !== "object" || M.Hub) return;
    Object.defineProperty(M, "Hub", {
      configurable: true,
      enumerable: false,
      value: {
        Queue: function (job) {
          var el = Array.isArray(job) ? job[2] : null;
          var run = function () {
            var X = window.MathJax;
            if (el && X && X.typesetPromise) X.typesetPromise([el]).catch(function () {});
          };
          var X = window.MathJax;
          if (X && X.startup && X.startup.promise) X.startup.promise.then(run);
          else setTimeout(run, 0);
        },
      },
    });
  }
  if (window.MathJax !== undefined) {
    var current = window.MathJax;
    addHub(current);
    Object.defineProperty(window, "MathJax", {
      configurable: true,
      get: function () { return current; },
      set: function (value) { current = value; addHub(value); },
    });
  }
  // Sliders for keyboard and screen-reader users: noUiSlider's handle (role="slider") gets no accessible name and
  // announces the option's index (aria-valuetext "2"), not its value. Name each handle after the slider's label
  // (its parameter, e.g. "σ") and announce the value the readout shows (e.g. "0.5"), whenever it changes.
  function a11ySlider(handle) {
    var box = handle.closest(".widget-slider, .widget-hslider, .widget-selection-slider");
    if (!box || handle.dataset.filterbookA11y) return;
    handle.dataset.filterbookA11y = "1";
    var label = box.querySelector(".widget-label");
    var readout = box.querySelector(".widget-readout");
    var name = function () { return (label && label.textContent.trim()) || "value"; };
    var sync = function () {
      if (handle.getAttribute("aria-label") !== name()) handle.setAttribute("aria-label", name());
      var text = readout ? readout.textContent.trim() : "";
      if (text && handle.getAttribute("aria-valuetext") !== text) handle.setAttribute("aria-valuetext", text);
    };
    sync();
    new MutationObserver(sync).observe(handle, { attributes: true, attributeFilter: ["aria-valuenow", "aria-valuetext"] });
    if (readout) new MutationObserver(sync).observe(readout, { childList: true, characterData: true, subtree: true });
    if (label) new MutationObserver(sync).observe(label, { childList: true, characterData: true, subtree: true });
  }
  function scan(root) {
    if (root.querySelectorAll) root.querySelectorAll(".noUi-handle[role=slider]").forEach(a11ySlider);
  }
  var start = function () {
    scan(document);
    new MutationObserver(function (records) {
      records.forEach(function (r) { r.addedNodes.forEach(function (n) { if (n.nodeType === 1) scan(n); }); });
    }).observe(document.body, { childList: true, subtree: true });
  };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
