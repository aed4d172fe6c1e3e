// Where ccphost runs and which instance this CRM embeds; `?ccphost=...&alias=...` overrides.
window.CRM_CONFIG = {
  ccphost: new URLSearchParams(location.search).get("ccphost") || "http://127.0.0.1:8000",
  alias: new URLSearchParams(location.search).get("alias") || "demo",
};
