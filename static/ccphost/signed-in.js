// The login popup's landing page: close it when the host asked for auto-close.
const page = document.getElementById("signed-in");
if (page && page.dataset.autoClose === "true" && window.opener) {
  window.setTimeout(() => window.close(), 300);
}
