// Starts Swagger UI on /api/docs. A file, not an inline script, so that the docs page's
// Content-Security-Policy can allow scripts from this origin only. The spec URL comes
// from the page (data-spec-url); validatorUrl: null keeps the validator badge, which
// would call an outside host, off.
window.addEventListener("load", function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout"
  });
});
