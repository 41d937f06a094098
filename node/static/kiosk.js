/* Kiosk: choose department/area queue, optional item, ID + mobile with keypad, ticket. */
(function () {
  "use strict";
  var OS = window.OS, _ = OS._, esc = OS.esc, data = OS.data, lang = data.lang;
  /* After a ticket: back to the first screen in RESET_SECONDS (?return=N on the kiosk's
     address), or AFTER_PRINT_SECONDS once the slip has printed (docs/kiosk.md). */
  var wanted = Number(new URLSearchParams(location.search).get("return"));
  var RESET_SECONDS = wanted >= 2 && wanted <= 120 ? wanted : 20, IDLE_SECONDS = 120;
  var AFTER_PRINT_SECONDS = Math.min(5, RESET_SECONDS);
  var state = { mode: null, queue: null, item: null, field: "id_number" };
  var history = [];
  var countdownTimer = null, idleTimer = null;

  var $ = function (id) { return document.getElementById(id); };
  var screens = document.querySelectorAll(".screen");
  var idInput = $("id_number"), phoneInput = $("phone"), refInput = $("ref");

  function show(name, push) {
    var current = document.querySelector(".screen.active");
    if (push !== false && current && current.dataset.screen !== name) {
      history.push(current.dataset.screen);
    }
    screens.forEach(function (s) { s.classList.toggle("active", s.dataset.screen === name); });
    var order = ["mode", "queue", "item", "info", "done"];
    var idx = order.indexOf(name === "checkin" ? "info" : name);
    document.querySelectorAll("#steps li").forEach(function (li) {
      var i = order.indexOf(li.dataset.step);
      li.classList.toggle("current", i === idx);
      li.classList.toggle("past", i < idx);
    });
    document.body.dataset.screen = name;
    $("kiosk").scrollTop = 0;
    touch();
  }

  function back() {
    var prev = history.pop();
    if (prev) show(prev, false); else restart();
  }

  function restart() {
    clearInterval(countdownTimer);
    history = [];
    state.mode = state.queue = state.item = state.appointment = null;
    idInput.value = ""; phoneInput.value = ""; refInput.value = "";
    $("print-frame").innerHTML = "";
    clearErrors();
    resetCheckin();
    show("mode", false);
    refreshQueues();
  }

  function touch() {
    clearTimeout(idleTimer);
    var screen = document.body.dataset.screen;
    if (screen && screen !== "mode" && screen !== "done") {
      idleTimer = setTimeout(restart, IDLE_SECONDS * 1000);
    }
  }

  /* -- step 2: queues -------------------------------------------------------------- */
  function refreshQueues() {
    return OS.api("GET", "/api/v1/queues").then(function (r) {
      if (r.ok && r.body.queues) { data.queues = r.body.queues; renderQueues(); }
    });
  }

  function renderQueues() {
    if (!state.mode) return;
    var list = data.queues.filter(function (q) { return q.kind === state.mode; });
    $("queue-title").textContent = state.mode === "area" ? _("请选择功能区") : _("请选择部门");
    $("queue-empty").hidden = list.length > 0;
    $("queue-list").classList.toggle("many", list.length > 12);
    $("queue-list").innerHTML = list.map(function (q) {
      var name = OS.queueName(q, lang), closed = q.open === false;
      var status = closed ?
        '<span class="q-wait q-closed-why"><b>' + esc(closedText(q.closed_reason)) + '</b>' +
          (q.hours ? ' · ' + esc(_("取号时间 {hours}", { hours: hoursText(q.hours) })) : '') + '</span>' :
        '<span class="q-wait"><b>' + esc(_("等候 {n} 人", { n: q.waiting })) + '</b>' +
          (q.waiting ? ' · ' + esc(_("约 {n} 分钟", { n: q.estimated_wait_minutes })) : '') +
          (q.cutoff ? ' · ' + esc(_("{time} 停止取号", { time: q.cutoff })) : '') + '</span>';
      return '<button type="button" class="queue-tile kind-' + esc(q.kind) + (closed ? ' closed' : '') +
        '" data-queue="' + esc(q.code) + '"' + (closed ? ' aria-disabled="true"' : '') + '>' +
        '<span class="q-prefix' + (q.prefix.length > 1 ? " q-prefix-long" : "") + '">' + esc(q.prefix) + '</span>' +
        '<span class="q-name">' + esc(name) + '</span>' + status + '</button>';
    }).join("");
  }

  function closedText(reason) {
    return {
      not_workday: _("今日非工作日，暂停取号"),
      before_hours: _("尚未开始取号"),
      between_hours: _("午间暂停取号"),
      after_hours: _("今日已停止取号"),
      after_cutoff: _("今日已停止取号")
    }[reason] || _("今日已停止取号");
  }

  function hoursText(hours) { return hours.split(",").join(lang === "en" ? ", " : "、"); }

  function itemsFor(q) {
    return data.items.filter(function (it) {
      return q.kind === "area" ? it.area === q.ref : it.departments.indexOf(q.ref) >= 0;
    });
  }

  function chooseQueue(code) {
    var q = data.queues.filter(function (x) { return x.code === code; })[0];
    if (!q || q.open === false) return;
    state.queue = q; state.item = null;
    document.querySelectorAll(".js-queue-name").forEach(function (el) {
      el.textContent = OS.queueName(q, lang);
    });
    var items = itemsFor(q);
    if (!items.length) { toInfo(); return; }
    $("item-list").innerHTML = items.map(function (it) {
      var name = lang === "en" && it.name_en ? it.name_en : it.name_zh;
      return '<button type="button" class="item-btn" data-item="' + esc(it.code) + '">' +
        esc(name) + '</button>';
    }).join("");
    show("item");
  }

  function toInfo() {
    var item = state.item;
    $$(".js-item-name").forEach(function (el) {
      el.textContent = item ? " · " + (lang === "en" && item.name_en ? item.name_en : item.name_zh) : "";
    });
    clearErrors();
    setField("id_number");
    show("info");
  }

  function $$(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }

  /* -- step 3: details and keypad -------------------------------------------------- */
  function setField(name) {
    state.field = name;
    $$(".field").forEach(function (f) { f.classList.toggle("focused", f.dataset.field === name); });
    $$(".key-x").forEach(function (k) { k.disabled = name !== "id_number"; });
  }

  function press(key) {
    var input = state.field === "phone" ? phoneInput : idInput;
    var max = Number(input.getAttribute("maxlength"));
    if (key === "back") input.value = input.value.slice(0, -1);
    else if (key === "clear") input.value = "";
    else if (input.value.length < max) {
      if (key === "X" && state.field !== "id_number") return;
      input.value += key;
    }
    clearFieldError(state.field);
    if (state.field === "id_number" && key !== "back" && key !== "clear" &&
        input.value.length === 18 && !phoneInput.value) {
      setField("phone");
    }
    touch();
  }

  function clearFieldError(name) {
    var el = $("error-" + name);
    if (el) el.textContent = "";
    var f = document.querySelector('.field[data-field="' + name + '"]');
    if (f) f.classList.remove("invalid");
  }

  function clearErrors() {
    ["id_number", "phone", "other"].forEach(clearFieldError);
    $("form-alert").hidden = true;
  }

  function showErrors(body) {
    var errors = (body.errors && body.errors.length) ? body.errors :
      [{ field: body.field || "other", message: body.message }];
    var first = null;
    errors.forEach(function (e) {
      var name = (e.field === "id_number" || e.field === "phone") ? e.field : "other";
      var el = $("error-" + name);
      var text = String(e.message || "");
      text = text.charAt(0).toUpperCase() + text.slice(1);
      el.textContent = el.textContent ? el.textContent + (lang === "en" ? "; " : "；") + text : text;
      var f = document.querySelector('.field[data-field="' + name + '"]');
      if (f) f.classList.add("invalid");
      if (!first && name !== "other") first = name;
    });
    $("form-alert").textContent = _("请核对标红的内容");
    $("form-alert").hidden = false;
    if (first) setField(first);
  }

  function mask(id) {
    id = String(id || "").toUpperCase();
    return id.length > 10 ? id.slice(0, 6) + new Array(id.length - 9).join("*") + id.slice(-4) : id;
  }

  function submit(ev) {
    ev.preventDefault();
    if (!state.queue) { restart(); return; }
    clearErrors();
    var body = {
      queue: state.queue.code,
      id_number: idInput.value.trim().toUpperCase(),
      phone: phoneInput.value.trim(),
      lang: lang
    };
    if (state.item) body.item = state.item.code;
    $("busy").hidden = false;
    $("submit").disabled = true;
    OS.api("POST", "/api/v1/tickets", body).then(function (r) {
      $("busy").hidden = true;
      $("submit").disabled = false;
      if (r.status === 201) { done(r.body, body.id_number); return; }
      showErrors(r.body || {});
    });
  }

  /* -- done: the ticket on screen, the slip printed in the page ---------------------- */
  var left = 0;

  function done(ticket, idNumber, queue) {
    queue = queue || state.queue;
    $("ticket-number").textContent = ticket.ticket_no;
    $("ticket-queue").textContent = OS.queueName(queue, lang) +
      (state.item ? " · " + (lang === "en" && state.item.name_en ? state.item.name_en : state.item.name_zh) : "");
    $("ticket-id-row").hidden = !idNumber;
    $("ticket-id").textContent = idNumber ? mask(idNumber) : "";
    var where = lang === "en" ? ticket.where_en : ticket.where_zh;
    $("ticket-where").textContent = where || "";
    $("ticket-where").hidden = !where;
    $("ticket-ahead").textContent = _("{n} 人", { n: ticket.waiting_ahead });
    $("ticket-wait").textContent = _("{n} 分钟", { n: ticket.estimated_wait_minutes });
    $("ticket-priority").hidden = !ticket.priority;
    // A QR code only when a phone can open it (public_url, or a kiosk address on the LAN).
    $("ticket-qr-box").hidden = !ticket.status_link;
    $("ticket-qr").removeAttribute("src");
    if (ticket.status_link) $("ticket-qr").src = "/t/" + encodeURIComponent(ticket.token) + "/qr.svg";
    $("ticket-ref").hidden = !!ticket.status_link;
    $("ticket-ref-code").textContent = ticket.ticket_no + "-" + String(ticket.service_date || "").replace(/-/g, "");
    $("print-ticket").dataset.url = ticket.print_url;
    document.body.dataset.ticket = ticket.ticket_no;
    document.body.dataset.printed = "";
    idInput.value = ""; phoneInput.value = "";
    history = [];
    show("done", false);
    left = RESET_SECONDS;
    countdown();
    clearInterval(countdownTimer);
    countdownTimer = setInterval(function () {
      left -= 1;
      countdown();
      if (left <= 0) restart();
    }, 1000);
    printSlip(ticket.print_url);
  }

  function countdown() {
    $("countdown").textContent = _("{n} 秒后自动返回首页", { n: Math.max(0, left) });
  }

  /* The slip prints from a hidden frame of this page: no new tab, and the kiosk comes back
     to its first screen by itself.  With Chromium's --kiosk-printing the print goes to the
     default printer without a dialog (docs/kiosk.md). */
  function printSlip(url) {
    var box = $("print-frame");
    box.innerHTML = "";
    var frame = document.createElement("iframe");
    frame.title = _("打印号票");
    frame.tabIndex = -1;
    frame.addEventListener("load", function () {
      var w = frame.contentWindow;
      if (!w) return;
      w.addEventListener("afterprint", printed);
      try { w.focus(); w.print(); } catch (e) { /* no printer: the slip stays on screen */ }
      printed();
    });
    frame.src = url + "?embed=1&lang=" + encodeURIComponent(lang);
    box.appendChild(frame);
  }

  function printed() {
    document.body.dataset.printed = "1";
    if (document.body.dataset.screen === "done" && left > AFTER_PRINT_SECONDS) {
      left = AFTER_PRINT_SECONDS;
      countdown();
    }
  }

  /* -- appointment check-in ---------------------------------------------------------- */
  function resetCheckin() {
    $("appointment").hidden = true;
    $("checkin-go").hidden = true;
    $("checkin-find").hidden = false;
    $("keypad-ref").hidden = false;
    $("error-ref").textContent = "";
    document.querySelector('.field[data-field="ref"]').classList.remove("invalid");
  }

  function refError(message) {
    $("error-ref").textContent = message;
    document.querySelector('.field[data-field="ref"]').classList.add("invalid");
  }

  function pressRef(key) {
    if (state.appointment) { state.appointment = null; resetCheckin(); }
    if (key === "back") refInput.value = refInput.value.slice(0, -1);
    else if (key === "clear") refInput.value = "";
    else if (refInput.value.length < 9) refInput.value += key;
    $("error-ref").textContent = "";
    document.querySelector('.field[data-field="ref"]').classList.remove("invalid");
    touch();
  }

  function queueByCode(code) {
    return data.queues.filter(function (x) { return x.code === code; })[0] || { code: code, name_zh: code, name_en: code };
  }

  function findAppointment(ev) {
    ev.preventDefault();
    var ref = refInput.value.trim().toUpperCase();
    if (!ref) { refError(_("请输入预约号")); return; }
    $("busy").hidden = false;
    OS.api("GET", "/api/v1/appointments/" + encodeURIComponent(ref) + "?lang=" + lang).then(function (r) {
      $("busy").hidden = true;
      if (r.status !== 200) { refError(r.status === 404 ? _("未找到该预约，请核对预约号") : (r.body && r.body.message) || ""); return; }
      var a = r.body.appointment;
      state.appointment = a;
      $("appt-ref").textContent = a.ref;
      $("appt-queue").textContent = OS.queueName(queueByCode(a.queue), lang);
      $("appt-when").textContent = a.date + " " + a.slot;
      $("appointment").hidden = false;
      $("keypad-ref").hidden = true;
      $("checkin-find").hidden = true;
      $("checkin-go").hidden = false;
      if (a.state !== "booked") {
        $("checkin-go").hidden = true;
        refError(a.state === "checked_in" ? _("该预约已签到") : _("该预约已取消"));
      }
    });
  }

  function checkIn() {
    var a = state.appointment;
    if (!a) return;
    $("busy").hidden = false;
    $("checkin-go").disabled = true;
    OS.api("POST", "/api/v1/appointments/" + encodeURIComponent(a.ref) + "/check-in?lang=" + lang, {}).then(function (r) {
      $("busy").hidden = true;
      $("checkin-go").disabled = false;
      if (r.status === 201) { state.item = null; done(r.body, null, queueByCode(a.queue)); return; }
      var body = r.body || {};
      if (body.error === "ticket_limit" || body.error === "queue_closed") refError(body.message);
      else if (r.status === 409) refError(_("该预约不是今天的，请在预约当日签到"));
      else refError(_("未找到该预约，请核对预约号"));
    });
  }

  /* -- wiring ---------------------------------------------------------------------- */
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("button, [data-field]");
    touch();
    if (!el) return;
    if (el.dataset.refKey) {
      pressRef(el.dataset.refKey);
    } else if (el.dataset.action === "checkin") {
      state.appointment = null; resetCheckin(); show("checkin");
    } else if (el.id === "checkin-go") {
      checkIn();
    } else if (el.dataset.mode) {
      state.mode = el.dataset.mode; renderQueues(); show("queue"); refreshQueues();
    } else if (el.dataset.queue) {
      chooseQueue(el.dataset.queue);
    } else if (el.dataset.item) {
      state.item = data.items.filter(function (i) { return i.code === el.dataset.item; })[0] || null;
      toInfo();
    } else if (el.dataset.key) {
      press(el.dataset.key);
    } else if (el.dataset.action === "back") {
      back();
    } else if (el.dataset.action === "restart" || el.id === "done") {
      restart();
    } else if (el.id === "skip-item") {
      state.item = null; toInfo();
    } else if (el.id === "print-ticket" && el.dataset.url) {
      left = Math.max(left, AFTER_PRINT_SECONDS + 5);
      printSlip(el.dataset.url);
    } else if (el.dataset.field) {
      setField(el.dataset.field);
    }
  });
  idInput.addEventListener("focus", function () { setField("id_number"); });
  phoneInput.addEventListener("focus", function () { setField("phone"); });
  idInput.addEventListener("input", function () {
    idInput.value = idInput.value.toUpperCase().replace(/[^0-9X]/g, "");
    clearFieldError("id_number");
  });
  phoneInput.addEventListener("input", function () {
    phoneInput.value = phoneInput.value.replace(/[^0-9]/g, "");
    clearFieldError("phone");
  });
  $("ticket-form").addEventListener("submit", submit);
  $("checkin-form").addEventListener("submit", findAppointment);
  refInput.addEventListener("input", function () {
    refInput.value = refInput.value.toUpperCase().replace(/[^A-Z0-9]/g, "");
    if (state.appointment) { state.appointment = null; resetCheckin(); }
  });

  function tick() {
    var now = new Date();
    $("clock").textContent = OS.dateIn(now, data.tz, lang) + "  " + OS.timeIn(now, data.tz, false);
  }
  tick(); setInterval(tick, 10000);
  setInterval(function () { if (document.body.dataset.screen === "queue") refreshQueues(); }, 15000);
  show("mode", false);
})();
