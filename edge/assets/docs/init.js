// The edge's API reference: Swagger UI over the edge's own /openapi.json. Everything it loads
// comes from the edge (no validator badge, no remote references), so it works offline.
// "Authorize" takes a bearer access token (from POST /v1/auth/sign-in) for "Try it out".
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  validatorUrl: null,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
  filter: true,
});
