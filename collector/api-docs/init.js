// Renders the collector's own description. A separate file, not an inline script, so the
// page keeps a CSP without 'unsafe-inline' scripts; validatorUrl null keeps every request local.
window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#api-docs",
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: false,
});
