/* Kiosk: choose department/area queue, optional item, ID + mobile with keypad, ticket. */
(function () {
  "use strict";
  var OS = window.OS, _ = OS._, esc = OS.esc, data = OS.data, lang = data.lang;
  var RESET_SECONDS = 30, IDLE_SECONDS = 120;
  var state = { mode: null, queue: null, item: null, field: "id_number" };
  var history = [];
  var countdownTimer = null, idleTimer = null;

  var $ = function (id) { return document.getElementById(id); };
  var screens = document.querySelectorAll(".screen");
  var idInput = $("id_number"), phoneInput = $("phone");

  function show(name, push) {
    var current = document.querySelector(".screen.active");
    if (push !== false && current && current.dataset.screen !== name) {
      history.push(current.dataset.screen);
    }
    screens.forEach(function (s) { s.classList.toggle("active", s.dataset.screen === name); });
    var order = ["mode", "queue", "item", "info", "done"], idx = order.indexOf(name);
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
    state.mode = state.queue = state.item = null;
    idInput.value = ""; phoneInput.value = "";
    clearErrors();
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
      var name = OS.queueName(q, lang);
      return '<button type="button" class="queue-tile kind-' + esc(q.kind) + '" data-queue="' + esc(q.code) + '">' +
        '<span class="q-prefix' + (q.prefix.length > 1 ? " q-prefix-long" : "") + '">' + esc(q.prefix) + '</span>' +
        '<span class="q-name">' + esc(name) + '</span>' +
        '<span class="q-wait"><b>' + esc(_("等候 {n} 人", { n: q.waiting })) + '</b>' +
        (q.waiting ? ' · ' + esc(_("约 {n} 分钟", { n: q.estimated_wait_minutes })) : '') +
        '</span></button>';
    }).join("");
  }

  function itemsFor(q) {
    return data.items.filter(function (it) {
      return q.kind === "area" ? it.area === q.ref : it.departments.indexOf(q.ref) >= 0;
    });
  }

  function chooseQueue(code) {
    var q = data.queues.filter(function (x) { return x.code === code; })[0];
    if (!q) return;
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

  /* -- done ------------------------------------------------------------------------ */
  function done(ticket, idNumber) {
    $("ticket-number").textContent = ticket.ticket_no;
    $("ticket-queue").textContent = OS.queueName(state.queue, lang) +
      (state.item ? " · " + (lang === "en" && state.item.name_en ? state.item.name_en : state.item.name_zh) : "");
    $("ticket-id").textContent = mask(idNumber);
    $("ticket-ahead").textContent = _("{n} 人", { n: ticket.waiting_ahead });
    $("ticket-wait").textContent = _("{n} 分钟", { n: ticket.estimated_wait_minutes });
    $("ticket-priority").hidden = !ticket.priority;
    $("ticket-qr").src = "/t/" + encodeURIComponent(ticket.token) + "/qr.svg";
    $("print-ticket").dataset.url = ticket.print_url;
    document.body.dataset.ticket = ticket.ticket_no;
    idInput.value = ""; phoneInput.value = "";
    history = [];
    show("done", false);
    var left = RESET_SECONDS;
    $("countdown").textContent = _("{n} 秒后自动返回首页", { n: left });
    clearInterval(countdownTimer);
    countdownTimer = setInterval(function () {
      left -= 1;
      $("countdown").textContent = _("{n} 秒后自动返回首页", { n: left });
      if (left <= 0) restart();
    }, 1000);
  }

  /* -- wiring ---------------------------------------------------------------------- */
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("button, [data-field]");
    touch();
    if (!el) return;
    if (el.dataset.mode) {
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
      window.open(el.dataset.url + "?autoprint=1", "_blank");
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

  function tick() {
    var now = new Date();
    $("clock").textContent = OS.dateIn(now, data.tz, lang) + "  " + OS.timeIn(now, data.tz, false);
  }
  tick(); setInterval(tick, 10000);
  setInterval(function () { if (document.body.dataset.screen === "queue") refreshQueues(); }, 15000);
  show("mode", false);
})();
