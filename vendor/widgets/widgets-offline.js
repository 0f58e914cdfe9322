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
})();
