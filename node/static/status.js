/* The ticket's status page: updated in place every 10 seconds while the ticket is in the
   line (no page reload, so the reader's place and focus are kept; a focused control inside
   the card pauses the update). Without scripts the page has its refresh link. */
(function () {
  "use strict";
  var PERIOD = 10000;
  function card() { return document.getElementById("status-card"); }
  function tick() {
    var c = card();
    if (!c || c.getAttribute("data-live") !== "1") return;
    if (c.contains(document.activeElement) && document.activeElement !== document.body) {
      window.setTimeout(tick, PERIOD);
      return;
    }
    fetch(window.location.pathname + window.location.search, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("status-card");
          var now = card();
          if (fresh && now) {
            now.innerHTML = fresh.innerHTML;
            now.setAttribute("data-live", fresh.getAttribute("data-live") || "0");
          }
        }
        window.setTimeout(tick, PERIOD);
      }, function () { window.setTimeout(tick, PERIOD); });
  }
  window.setTimeout(tick, PERIOD);
})();
