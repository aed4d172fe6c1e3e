// The login popup's landing page: close it when the instance asks for auto-close. Browsers
// let a script close only a window a script opened (the host library's popup, even when
// opened without an opener); in a tab the agent opened, this does nothing.
const page = document.getElementById("signed-in");
if (page && page.dataset.autoClose === "true") {
  window.setTimeout(() => window.close(), 300);
}
