/* Display board: live state over server-sent events, chime + speech on every call.
 *
 * Sound starts by itself where the browser allows it (a board launched with
 * --autoplay-policy=no-user-gesture-required, docs/display.md); only where it refuses is the
 * "tap to enable" overlay shown.  Calls are spoken with the browser's own voice for the
 * language, or, where it has none (a stock Chromium on Linux), with the WAV the node renders
 * (GET /api/v1/display/speech).  body[data-audio] says on/blocked, body[data-voice] which
 * voice spoke last (browser, node, none). */
(function () {
  "use strict";
  var OS = window.OS, _ = OS._, esc = OS.esc, data = OS.data, lang = data.lang;
  var $ = function (id) { return document.getElementById(id); };
  var audio = null;           // AudioContext: running when autoplay is allowed or after a tap
  var nodeSpoken = 0;         // calls played from the node's WAV
  function sound() { return !!audio && audio.state === "running"; }
  var queue = [], speaking = false;
  var flashTimers = {};

  /* -- clock ----------------------------------------------------------------------- */
  function tick() {
    var now = new Date();
    $("clock-time").textContent = OS.timeIn(now, data.tz, true);
    $("clock-date").textContent = OS.dateIn(now, data.tz, lang);
  }
  tick(); setInterval(tick, 1000);

  /* -- rendering ------------------------------------------------------------------- */
  function windowLabel(n) { return _("{n}号窗口", { n: n }); }
  // A window's name worth showing: not just its number ("3号窗口", "Window 3").
  function ownName(name, n) { return !!name && name !== windowLabel(n) && name !== n + "号窗口"; }

  function renderWindows(wins) {
    var grid = $("win-grid");
    grid.classList.toggle("n-small", wins.length <= 3);
    grid.classList.toggle("n-large", wins.length > 12);
    grid.innerHTML = wins.map(function (w) {
      var cls = "win-card " + (w.status !== "open" ? w.status : (w.ticket_no ? "serving" : "idle"));
      var ticket, stateText;
      if (w.status === "paused") { ticket = _("暂停服务"); stateText = w.ticket_no || ""; }
      else if (w.status === "closed") { ticket = _("未开放"); stateText = ""; }
      else if (w.ticket_no) { ticket = w.ticket_no; stateText = _("正在办理"); }
      else { ticket = "—"; stateText = _("等待叫号"); }
      var name = ownName(w.name, w.number) ? w.name : "";
      return '<div class="' + cls + '" data-window="' + esc(w.number) + '" data-ticket="' + esc(w.ticket_no || "") + '">' +
        '<div class="win-top"><span class="win-num">' + esc(windowLabel(w.number)) + '</span>' +
        '<span class="win-name">' + esc(name) + '</span></div>' +
        '<div class="win-ticket">' + esc(ticket) + '</div>' +
        '<div class="win-state">' + esc(stateText) + '</div></div>';
    }).join("");
    Object.keys(flashTimers).forEach(function (n) {
      var card = grid.querySelector('[data-window="' + n + '"]');
      if (card) card.classList.add("flash");
    });
  }

  function renderRecent(calls) {
    var list = $("recent");
    if (!calls.length) {
      list.innerHTML = '<li><span class="r-empty">' + esc(_("暂无叫号")) + '</span></li>';
      return;
    }
    list.innerHTML = calls.slice(0, 8).map(function (c) {
      var at = c.at ? OS.timeIn(new Date(c.at), data.tz, false) : "";
      var recall = c.kind === "ticket.recalled" || c.kind === "recall";
      return '<li data-ticket="' + esc(c.ticket_no) + '"><span class="r-ticket">' + esc(c.ticket_no) +
        (recall ? '<span class="r-recall">' + esc(_("重呼")) + '</span>' : '') + '</span>' +
        '<span class="r-window">' + esc(windowLabel(c.window)) + '</span>' +
        '<span class="r-meta">' + esc(at) + (ownName(c.window_name, c.window) ? " · " + esc(c.window_name) : "") + '</span></li>';
    }).join("");
  }

  function renderQueues(queues) {
    var busy = queues.filter(function (q) { return q.waiting > 0; });
    busy.sort(function (a, b) { return b.waiting - a.waiting; });
    $("queue-chips").innerHTML = busy.length ? busy.slice(0, 12).map(function (q) {
      return '<div class="chip kind-' + esc(q.kind) + '" data-queue="' + esc(q.code) + '">' +
        '<span class="chip-prefix">' + esc(q.prefix) + '</span>' +
        '<span class="chip-name">' + esc(OS.queueName(q, lang)) + '</span>' +
        '<span class="chip-n">' + esc(q.waiting) + '</span></div>';
    }).join("") : '<div class="chip-empty">' + esc(_("当前无人排队等候")) + '</div>';
  }

  var queuesTimer = null;
  function refreshQueues() {
    clearTimeout(queuesTimer);
    queuesTimer = setTimeout(function () {
      OS.api("GET", "/api/v1/queues").then(function (r) {
        if (r.ok && r.body.queues) renderQueues(r.body.queues);
      });
    }, 400);
  }

  function showNow(ticketNo, windowNo, flash) {
    var box = $("now-calling");
    $("now-ticket").textContent = ticketNo;
    $("now-window").textContent = windowLabel(windowNo);
    box.classList.add("has-call");
    if (flash) {
      box.classList.remove("flash");
      void box.offsetWidth;  // restart the animation
      box.classList.add("flash");
    }
  }

  function applyState(st) {
    renderWindows(st.windows || []);
    renderRecent(st.last_calls || []);
    if (!$("now-calling").classList.contains("has-call") && st.last_calls && st.last_calls.length) {
      showNow(st.last_calls[0].ticket_no, st.last_calls[0].window, false);
    }
  }

  function flashWindow(n) {
    clearTimeout(flashTimers[n]);
    var card = document.querySelector('.win-card[data-window="' + n + '"]');
    if (card) card.classList.add("flash");
    flashTimers[n] = setTimeout(function () {
      delete flashTimers[n];
      var c = document.querySelector('.win-card[data-window="' + n + '"]');
      if (c) c.classList.remove("flash");
    }, 5000);
  }

  /* -- sound ----------------------------------------------------------------------- */
  function chime() {
    if (!sound()) return Promise.resolve();
    var t0 = audio.currentTime + 0.05;
    [[659.25, 0], [523.25, 0.55]].forEach(function (tone) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = tone[0];
      gain.gain.setValueAtTime(0.0001, t0 + tone[1]);
      gain.gain.exponentialRampToValueAtTime(0.5, t0 + tone[1] + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + tone[1] + 1.1);
      osc.connect(gain).connect(audio.destination);
      osc.start(t0 + tone[1]);
      osc.stop(t0 + tone[1] + 1.15);
    });
    return new Promise(function (resolve) { setTimeout(resolve, 1700); });
  }

  function browserVoice(voiceLang) {
    if (!("speechSynthesis" in window)) return null;
    var want = voiceLang.slice(0, 2).toLowerCase();
    var voices = window.speechSynthesis.getVoices().filter(function (v) {
      return v.lang && v.lang.replace("_", "-").toLowerCase().indexOf(want) === 0;
    });
    return voices.length ? voices[0] : null;
  }

  var wavCache = {};
  function nodeWav(call, speechLang) {
    var key = call.ticket_no + "|" + call.window + "|" + speechLang;
    if (!wavCache[key]) {
      var url = "/api/v1/display/speech?ticket=" + encodeURIComponent(call.ticket_no) +
        "&window=" + encodeURIComponent(call.window) + "&lang=" + speechLang;
      wavCache[key] = fetch(url).then(function (r) {
        if (!r.ok) throw new Error("speech " + r.status);
        return r.arrayBuffer();
      }).then(function (buf) {
        return new Promise(function (ok, fail) { audio.decodeAudioData(buf, ok, fail); });
      });
      wavCache[key].catch(function () { delete wavCache[key]; });
      var keys = Object.keys(wavCache);
      if (keys.length > 16) delete wavCache[keys[0]];
    }
    return wavCache[key];
  }

  function playNode(call, speechLang) {
    return nodeWav(call, speechLang).then(function (buffer) {
      return new Promise(function (resolve) {
        var src = audio.createBufferSource();
        src.buffer = buffer;
        src.connect(audio.destination);
        src.onended = resolve;
        setTimeout(resolve, (buffer.duration + 1) * 1000);
        src.start();
        nodeSpoken += 1;
        document.body.dataset.nodeSpeech = String(nodeSpoken);
      });
    }).catch(function () { document.body.dataset.voice = "none"; });
  }

  function speakOnce(call, text, voiceLang) {
    if (!sound() || !text) return Promise.resolve();
    var voice = browserVoice(voiceLang);
    if (!voice) {
      if (data.speech_audio) {
        document.body.dataset.voice = "node";
        return playNode(call, voiceLang === "en-US" ? "en" : "zh");
      }
      document.body.dataset.voice = "none";
      return Promise.resolve();
    }
    document.body.dataset.voice = "browser";
    return new Promise(function (resolve) {
      var u = new SpeechSynthesisUtterance(text);
      u.lang = voiceLang; u.rate = 0.9; u.volume = 1;
      u.voice = voice;
      var finished = false;
      var finish = function () { if (!finished) { finished = true; resolve(); } };
      u.onend = finish; u.onerror = finish;
      setTimeout(finish, 12000);  // never let a stuck synthesizer block the board
      window.speechSynthesis.speak(u);
    });
  }

  function pump() {
    if (speaking || !queue.length) return;
    speaking = true;
    var call = queue.shift();
    var text = lang === "en" ? (call.speech_en || call.speech_zh) : call.speech_zh;
    var voiceLang = lang === "en" && call.speech_en ? "en-US" : "zh-CN";
    document.body.dataset.lastCall = call.ticket_no + " " + text;
    showNow(call.ticket_no, call.window, true);
    flashWindow(call.window);
    chime()
      .then(function () { return speakOnce(call, text, voiceLang); })
      .then(function () { return new Promise(function (r) { setTimeout(r, sound() ? 600 : 0); }); })
      .then(function () { return speakOnce(call, text, voiceLang); })
      .then(function () { speaking = false; setTimeout(pump, sound() ? 800 : 0); });
  }

  function audioOn() {
    document.body.dataset.audio = "on";
    document.body.classList.add("audio-on");
    $("unlock").hidden = true;
  }

  function unlock() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx && !audio) {
      try { audio = new Ctx(); } catch (e) { audio = null; }
    }
    if (audio && audio.state === "suspended") audio.resume();
    if ("speechSynthesis" in window) {
      // A silent utterance inside the tap unlocks speech for later calls.
      var warm = new SpeechSynthesisUtterance(" ");
      warm.volume = 0;
      window.speechSynthesis.speak(warm);
    }
    audioOn();
  }
  $("unlock").addEventListener("click", unlock);

  // Without a tap: a board launched with the autoplay flag gets a running AudioContext.
  (function tryAutoplay() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx) {
      try { audio = new Ctx(); } catch (e) { audio = null; }
    }
    if (audio && audio.state === "running") { audioOn(); return; }
    document.body.dataset.audio = "blocked";
    $("unlock").hidden = false;
    $("unlock-btn").focus();
    if (audio) audio.resume().then(function () { if (audio.state === "running") audioOn(); });
  })();

  /* -- live feed ------------------------------------------------------------------- */
  applyState(data.state || {});
  renderQueues(data.queues || []);
  setInterval(refreshQueues, 60000);
  function connect() {
    var es = new EventSource("/api/v1/display/stream");
    es.addEventListener("open", function () {
      $("offline").hidden = true;
      document.querySelector(".board-foot").classList.remove("is-offline");
      document.body.dataset.connected = "1";
    });
    es.addEventListener("error", function () {
      $("offline").hidden = false;
      document.querySelector(".board-foot").classList.add("is-offline");
    });
    es.addEventListener("queues", refreshQueues);
    es.addEventListener("state", function (ev) {
      applyState(JSON.parse(ev.data));
      refreshQueues();
      document.body.dataset.connected = "1";
    });
    es.addEventListener("call", function (ev) {
      var call = JSON.parse(ev.data);
      queue.push(call);
      pump();
    });
  }
  connect();
})();
