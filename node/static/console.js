/* Window console: call, recall, no-show, suspend, finish, transfer, pause; live refresh. */
(function () {
  "use strict";
  var OS = window.OS, _ = OS._, esc = OS.esc, data = OS.data, lang = data.lang;
  var STATUS = { open: _("服务中"), paused: _("暂停服务"), closed: _("已关闭") };
  var PRIORITY = { elderly: _("老年人优先"), appointment: _("预约优先"), staff: _("人工优先") };
  var csrf = window.CSRF_TOKEN;
  var $ = function (id) { return document.getElementById(id); };
  var win = data.window, current = data.current, suspended = data.suspended || [];
  var queues = data.queues || [];
  var busy = false, refreshTimer = null, msgTimer = null;
  var base = "/api/v1/windows/" + win.id;

  function message(text, kind) {
    var box = $("message");
    box.textContent = text;
    box.className = "console-msg msg-" + (kind || "info");
    box.hidden = false;
    clearTimeout(msgTimer);
    if (kind !== "error") msgTimer = setTimeout(function () { box.hidden = true; }, 6000);
  }

  function queueName(code) {
    return OS.queueName(data.queue_names[code], lang) || code;
  }

  function itemName(code) {
    var it = code && data.items[code];
    return it ? (lang === "en" && it.name_en ? it.name_en : it.name_zh) : "—";
  }

  /* -- rendering ------------------------------------------------------------------- */
  function render() {
    var open = win.status === "open";
    $("window-status").className = "badge badge-" + win.status;
    $("window-status").dataset.status = win.status;
    $("window-status").textContent = STATUS[win.status] || win.status;
    $("btn-pause").hidden = !open;
    $("btn-open").hidden = open;

    $("current-none").hidden = !!current;
    $("current-box").hidden = !current;
    if (current) {
      $("current-no").textContent = current.ticket_no;
      $("current-queue").textContent = queueName(current.queue);
      $("current-item").textContent = itemName(current.item_code);
      $("current-id").textContent = current.id_masked || "";
      $("current-phone").textContent = current.phone_masked || "";
      $("current-called").textContent = current.called_at ? OS.timeIn(new Date(current.called_at), data.tz) : "";
      $("current-recalls").textContent = String(current.recalls || 0) + " / " + data.recall_limit;
      $("intake-link").href = "/cases/new?ticket=" + encodeURIComponent(current.id);
      var prio = $("current-prio");
      prio.hidden = !current.priority;
      prio.textContent = PRIORITY[current.priority_reason] || PRIORITY.staff;
    }
    document.body.dataset.current = current ? current.ticket_no : "";

    $("btn-call").disabled = !!current || !open;
    ["btn-recall", "btn-noshow", "btn-suspend", "btn-finish", "btn-transfer"].forEach(function (id) {
      $(id).disabled = !current;
    });
    $("transfer-target").disabled = !current;
    $("btn-recall").disabled = !current || (current.recalls || 0) >= data.recall_limit;

    $("suspended").innerHTML = suspended.length ? suspended.map(function (s) {
      return '<li><span class="s-no">' + esc(s.ticket_no) + '</span><span class="s-meta">' +
        esc(queueName(s.queue)) + '</span><button type="button" class="btn btn-small" data-action="resume" data-ticket="' +
        esc(s.id) + '"' + (current ? " disabled" : "") + '>' + esc(_("恢复")) + '</button></li>';
    }).join("") : '<li class="empty">' + esc(_("暂无挂起的号码")) + '</li>';

    var all = win.queues.indexOf("*") >= 0;
    var served = queues.filter(function (q) {
      return all ? q.waiting > 0 : win.queues.indexOf(q.code) >= 0;
    });
    served.sort(function (a, b) { return b.waiting - a.waiting; });
    var total = 0;
    $("queue-counts").innerHTML = served.map(function (q) {
      total += q.waiting;
      return '<li data-queue="' + esc(q.code) + '" class="' + (q.waiting ? "has-waiting" : "") + '">' +
        '<span class="qc-prefix">' + esc(q.prefix) + '</span><span class="qc-name">' + esc(OS.queueName(q, lang)) +
        '</span><span class="qc-n">' + esc(q.waiting) + '</span></li>';
    }).join("") || '<li class="empty">' + esc(_("当前没有等候的群众")) + '</li>';
    $("queue-total").textContent = String(total);
    tickElapsed();
  }

  function tickElapsed() {
    var el = $("elapsed");
    if (!current || !current.called_at) { el.textContent = ""; return; }
    var s = Math.max(0, Math.floor((Date.now() - new Date(current.called_at).getTime()) / 1000));
    var mm = Math.floor(s / 60), ss = s % 60;
    el.textContent = (mm < 10 ? "0" : "") + mm + ":" + (ss < 10 ? "0" : "") + ss;
  }
  setInterval(tickElapsed, 1000);

  /* -- data ------------------------------------------------------------------------ */
  function refresh() {
    return Promise.all([OS.api("GET", base), OS.api("GET", "/api/v1/queues")]).then(function (rs) {
      if (rs[0].ok) {
        var w = rs[0].body.window;
        win.status = w.status; win.queues = w.queues;
        current = w.current; suspended = w.suspended || [];
      } else if (rs[0].status === 401) {
        window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
        return;
      }
      if (rs[1].ok) queues = rs[1].body.queues || queues;
      render();
    });
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 250);
  }

  function act(action, extra) {
    if (busy) return;
    var body = extra;
    if (action === "transfer") {
      var v = $("transfer-target").value;
      if (!v) { message(_("请先选择转移目标"), "warn"); return; }
      var parts = v.split(":"), kind = parts.shift(), target = parts.join(":");
      body = kind === "window" ? { window: Number(target) } : { queue: target };
    }
    if (action === "no-show" && current &&
        !window.confirm(_("确认将 {no} 标记为过号？").replace("{no}", current.ticket_no))) return;
    busy = true;
    document.body.classList.add("busy");
    OS.api("POST", base + "/" + action, body === undefined ? {} : body, csrf).then(function (r) {
      busy = false;
      document.body.classList.remove("busy");
      if (!r.ok) {
        message(_("操作未完成") + (lang === "en" ? ": " : "：") + (r.body.message || ("HTTP " + r.status)), "error");
        if (r.status === 401) window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
        return refresh();
      }
      if (action === "call-next") {
        if (r.body.ticket) message(_("已呼叫 {no}").replace("{no}", r.body.ticket.ticket_no), "ok");
        else message(_("当前没有等候的群众"), "warn");
      } else if (action === "recall" || action === "resume") {
        message(_("已呼叫 {no}").replace("{no}", r.body.ticket.ticket_no), "ok");
      } else {
        message(_("操作成功"), "ok");
      }
      if (action === "transfer") $("transfer-target").value = "";
      return refresh();
    });
  }

  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("[data-action]");
    if (!el || el.disabled) return;
    var action = el.dataset.action;
    if (action === "resume") act("resume", { ticket_id: Number(el.dataset.ticket) });
    else act(action);
  });

  /* Function keys for experienced staff: F1 call, F2 recall, F4 finish. */
  document.addEventListener("keydown", function (ev) {
    var map = { F1: "btn-call", F2: "btn-recall", F4: "btn-finish" };
    var id = map[ev.key];
    if (id && !$(id).disabled) { ev.preventDefault(); $(id).click(); }
  });

  /* -- live feed ------------------------------------------------------------------- */
  function connect() {
    var es = new EventSource("/api/v1/display/stream");
    es.addEventListener("open", function () { $("live").classList.remove("off"); });
    es.addEventListener("error", function () { $("live").classList.add("off"); });
    es.addEventListener("state", scheduleRefresh);
    es.addEventListener("queues", scheduleRefresh);
  }
  render();
  connect();
  setInterval(refresh, 30000);
})();
