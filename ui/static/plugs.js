// plugs dashboard: uptimes tick in the browser, the connection state shows,
// and focus stays where it was when a live update replaces a table row.
(function () {
  "use strict";
  function fmt(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + "s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "m" + String(s % 60).padStart(2, "0") + "s";
    var h = Math.floor(m / 60);
    if (h < 48) return h + "h" + String(m % 60).padStart(2, "0") + "m";
    return Math.floor(h / 24) + "d" + String(h % 24).padStart(2, "0") + "h";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-since]").forEach(function (t) {
      var at = Date.parse(t.getAttribute("data-since"));
      if (!isNaN(at)) t.textContent = fmt(now - at);
    });
  }
  setInterval(tick, 1000);
  function conn(state) {
    var c = document.getElementById("conn");
    if (c) { c.textContent = state; c.setAttribute("data-state", state); }
  }
  document.addEventListener("htmx:sseOpen", function (e) {
    if (e.target && e.target.id === "live") conn("on");
  });
  document.addEventListener("htmx:sseError", function (e) {
    if (e.target && e.target.id === "live") conn("reconnecting");
  });
  // Keep the log pane near its end while it grows, unless the reader scrolled up.
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    var log = document.getElementById("log");
    if (log) log.dataset.atEnd = String(log.scrollHeight - log.scrollTop - log.clientHeight < 40);
  });
  document.addEventListener("htmx:sseMessage", function (e) {
    var log = document.getElementById("log");
    if (!log) return;
    if (log.dataset.atEnd !== "false") log.scrollTop = log.scrollHeight;
    // Bound what the page keeps: the oldest lines go first.
    while (log.childNodes.length > 2000) log.removeChild(log.firstChild);
  });
})();
// Live patches: the "patch" event of /events carries elements with ids (a
// table row, an instance's state panel, the summary); each replaces the
// element of this page with its id, if the page shows it.
document.addEventListener("htmx:sseBeforeMessage", function (e) {
  var ev = e.detail;
  if (!ev || ev.type !== "patch") return;
  e.preventDefault();
  var tpl = document.createElement("template");
  tpl.innerHTML = ev.data;
  Array.prototype.slice.call(tpl.content.children).forEach(function (el) {
    var old = el.id && document.getElementById(el.id);
    if (!old) return;
    var focused = old.contains(document.activeElement) && document.activeElement.getAttribute("href");
    old.replaceWith(el);
    if (window.htmx) window.htmx.process(el);
    if (focused) {
      var again = el.querySelector('[href="' + focused.replace(/"/g, '\\"') + '"]');
      if (again) again.focus();
    }
  });
});
