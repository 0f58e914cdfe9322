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
})();
