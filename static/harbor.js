// Show a banner while htmx polls fail, and hide it after the next poll that succeeds.
// (htmx keeps polling after an error, so the banner clears itself when Harbor answers again.)
(function () {
  "use strict";

  function banner() {
    return document.getElementById("poll-error");
  }

  function showError(reason) {
    var element = banner();
    if (!element) return;
    element.querySelector(".reason").textContent = reason;
    element.hidden = false;
  }

  document.addEventListener("htmx:sendError", function () {
    showError("Harbor could not be reached");
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    showError("Harbor answered " + xhr.status + " " + xhr.statusText);
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var element = banner();
    if (element && event.detail.successful) element.hidden = true;
  });
})();
