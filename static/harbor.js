// Harbor's small script: progressive enhancement only; every page works without it.
//  - a banner while htmx polls fail, hidden after the next poll that succeeds (htmx keeps
//    polling after an error, so the banner clears itself when Harbor answers again);
//  - sections the user opened or closed stay so when a live region is replaced;
//  - a live log follows its tail unless the user scrolled up in it;
//  - buttons with data-confirm ask before submitting;
//  - running times (.ticking, in seconds when rendered) count on every second, since a live
//    region that did not change is not sent again (its poll gets an empty 204).
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

  // Sections (<details id=…>) the user toggled, by id: true when opened.
  var toggled = {};

  document.addEventListener("click", function (event) {
    var summary = event.target.closest("summary");
    var details = summary && summary.parentElement;
    if (!details || !details.id) return;
    // The click toggles the section after this handler; remember the state it will have.
    toggled[details.id] = !details.open;
  });

  // Log scroll state before a swap, by id: {top, atEnd}.
  var logs = {};

  function atEnd(element) {
    return element.scrollTop + element.clientHeight >= element.scrollHeight - 8;
  }

  document.addEventListener("htmx:beforeSwap", function () {
    logs = {};
    document.querySelectorAll(".log pre[id]").forEach(function (pre) {
      logs[pre.id] = { top: pre.scrollTop, atEnd: atEnd(pre) };
    });
  });

  function restore(root) {
    Object.keys(toggled).forEach(function (id) {
      var details = document.getElementById(id);
      if (details && details.tagName === "DETAILS") details.open = toggled[id];
    });
    root.querySelectorAll(".log pre[id]").forEach(function (pre) {
      var before = logs[pre.id];
      var follow = pre.dataset.follow === "true";
      if (follow && (!before || before.atEnd)) {
        pre.scrollTop = pre.scrollHeight;
      } else if (before) {
        pre.scrollTop = before.top;
      }
    });
  }

  document.addEventListener("htmx:afterSettle", function () {
    restore(document);
  });

  document.addEventListener("DOMContentLoaded", function () {
    restore(document);
  });

  // As builds/templatetags/harbor_ui.py's format_seconds.
  function formatSeconds(seconds) {
    if (seconds < 1) return Number(seconds.toPrecision(2)) + " s";
    if (seconds < 10) return seconds.toFixed(1) + " s";
    var whole = Math.floor(seconds);
    var hours = Math.floor(whole / 3600);
    var minutes = Math.floor((whole % 3600) / 60);
    if (hours) return hours + " h " + minutes + " min";
    return minutes ? minutes + " min " + (whole % 60) + " s" : whole + " s";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".ticking[data-seconds]").forEach(function (element) {
      if (!element.dataset.shownAt) element.dataset.shownAt = String(now);
      var seconds =
        parseFloat(element.dataset.seconds) + (now - Number(element.dataset.shownAt)) / 1000;
      element.textContent = formatSeconds(seconds);
    });
  }

  setInterval(tick, 1000);

  // A new API token's field selects itself, ready to copy.
  document.addEventListener("focusin", function (event) {
    if (event.target.classList && event.target.classList.contains("token-value")) {
      event.target.select();
    }
  });

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = button && button.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
