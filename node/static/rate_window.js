/* The window's evaluator (好差评 评价器): polls what to rate, lights up with the five levels,
   asks the reason of a bad rating, submits through POST /api/v1/ratings, thanks, goes idle. */
(function () {
  "use strict";
  var OS = window.OS, _ = OS._, data = OS.data;
  var n = data.window.number;
  var prompt = null;          // what is being rated
  var mode = "idle";          // idle | lit | reasons | thanks
  var chosen = null;          // level chosen, waiting for its reason
  var busy = false;
  var thanksTimer = null;
  var main = document.getElementById("ev-main");
  var screens = { idle: "ev-idle", lit: "ev-lit", reasons: "ev-reasons", thanks: "ev-thanks" };
  var errorEl = document.getElementById("ev-error");

  function show(next) {
    mode = next;
    main.setAttribute("data-mode", next);
    Object.keys(screens).forEach(function (k) {
      document.getElementById(screens[k]).hidden = k !== next;
    });
    errorEl.hidden = true;
  }

  function subject(p) {
    if (p.kind === "case") {
      var item = p.item ? (data.lang === "en" && p.item.name_en ? p.item.name_en : p.item.name_zh) : "";
      return _("办件 {case_no}", { case_no: p.case_no }) + (item ? " · " + item : "");
    }
    return _("排队号 {ticket}", { ticket: p.ticket_no });
  }

  function same(a, b) {
    return a && b && a.kind === b.kind && a.token === b.token && a.case_no === b.case_no;
  }

  function poll() {
    OS.api("GET", "/api/v1/windows/" + n + "/rating-prompt").then(function (r) {
      if (r.ok) {
        var p = r.body.prompt;
        if (mode === "idle" && p) {
          prompt = p;
          document.getElementById("ev-subject").textContent = subject(p);
          show("lit");
        } else if (mode === "lit" && !same(p, prompt)) {
          // expired, rated elsewhere, or the next ticket was called
          prompt = p;
          if (p) { document.getElementById("ev-subject").textContent = subject(p); }
          else { show("idle"); }
        }
      }
      window.setTimeout(poll, data.poll_ms || 2000);
    });
  }

  function submit(level, reason) {
    if (!prompt || busy) return;
    busy = true;
    var body = { level: level, channel: "window" };
    if (prompt.kind === "case") { body.case_no = prompt.case_no; body.rating_token = prompt.rating_code; }
    else { body.token = prompt.token; }
    if (reason) body.reason = reason;
    OS.api("POST", "/api/v1/ratings", body).then(function (r) {
      busy = false;
      if (r.ok || r.status === 409) {
        prompt = null;
        chosen = null;
        document.getElementById("ev-thanks-note").textContent =
          level <= 2 ? _("我们将在规定时限内回访并整改") : _("欢迎您再次光临");
        show("thanks");
        window.clearTimeout(thanksTimer);
        thanksTimer = window.setTimeout(function () { show("idle"); }, 5000);
      } else {
        errorEl.textContent = (r.body && r.body.message) || _("网络异常，请稍后重试");
        errorEl.hidden = false;
      }
    });
  }

  document.getElementById("ev-levels").addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-level]");
    if (!b) return;
    var level = parseInt(b.getAttribute("data-level"), 10);
    if (data.bad.indexOf(level) >= 0) {
      chosen = level;
      show("reasons");
    } else {
      submit(level, null);
    }
  });
  document.getElementById("ev-reason-grid").addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-reason]");
    if (b && chosen) submit(chosen, b.getAttribute("data-reason"));
  });
  document.getElementById("ev-back").addEventListener("click", function () {
    chosen = null;
    show(prompt ? "lit" : "idle");
  });
  poll();
})();
