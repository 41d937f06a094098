/* onestop hub dashboard: renders the figures embedded in the page and keeps them live by
   polling GET /api/v1/dash/{code} every refresh_seconds (numbers update in place).
   No libraries: charts are inline SVG. */
(function () {
  "use strict";
  var body = document.body;
  var CODE = body.getAttribute("data-code");
  var LANG = body.getAttribute("data-lang") || "zh";
  var S = JSON.parse(document.getElementById("dash-strings").textContent);
  var data = JSON.parse(document.getElementById("dash-data").textContent);
  var tab = "departments";
  var NS = "http://www.w3.org/2000/svg";

  /* S: the page's messages from the catalog, {zh-CN msgid: text}, a context as
     "context\u0004msgid" (onestop.i18n.script_messages). */
  function fill(s, fmt) {
    if (fmt) Object.keys(fmt).forEach(function (k) { s = s.split("{" + k + "}").join(fmt[k]); });
    return s;
  }
  function _(msgid, fmt) { return fill(S[msgid] || msgid, fmt); }
  function pgettext(context, msgid, fmt) { return fill(S[context + "\u0004" + msgid] || msgid, fmt); }
  var HEALTH = { green: _("正常"), amber: _("关注"), red: _("异常"), grey: _("未接入") };
  var STATES = { online: _("在线"), offline: _("离线"), never: _("未上线"), revoked: _("密钥吊销") };
  var ALERTS = { fork: _("分叉"), rollback: _("回滚"), rejected: _("拒收记录"),
                 revoked_key: pgettext("alert", "密钥吊销"), unknown_node: _("未登记节点") };
  var RATINGS = { 5: _("非常满意"), 4: _("满意"), 3: _("基本满意"), 2: _("不满意"), 1: _("非常不满意") };
  function alertName(k) { return ALERTS[k] || k; }
  function esc(v) {
    return String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function num(n) {
    if (n === null || n === undefined) return "—";
    return Number(n).toLocaleString(LANG === "en" ? "en-US" : "zh-CN");
  }
  function pct(x, digits) {
    if (x === null || x === undefined) return "—";
    return (x * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  }
  function dur(s) {
    if (s === null || s === undefined) return "—";
    s = Math.round(s);
    if (s < 60) return _("{s}秒", { s: s });
    if (s < 3600) {
      var m = Math.floor(s / 60), r = s % 60;
      return r ? _("{m}分{s}秒", { m: m, s: r }) : _("{m}分钟", { m: m });
    }
    if (s < 86400) {
      var h = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60);
      return mm ? _("{h}小时{m}分", { h: h, m: mm }) : _("{h}小时", { h: h });
    }
    var d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
    return hh ? _("{d}天{h}小时", { d: d, h: hh }) : _("{d}天", { d: d });
  }
  function durHTML(s) {
    var t = dur(s);
    return esc(t).replace(/([^\d\s.,—]+)/g, "<small>$1</small>");
  }
  function periodQuery() {
    var p = data.period;
    return p.preset === "custom" ? "from=" + p.from + "&to=" + p.to : "preset=" + p.preset;
  }
  function drillHref(code) {
    return "/dash/" + encodeURIComponent(code) + "?" + periodQuery() + (LANG === "en" ? "&lang=en" : "");
  }

  /* ---------------------------------------------------------------- KPIs */
  var KPIS = [
    { id: "online", label: _("在线中心") },
    { id: "tickets", label: _("取号量") },
    { id: "cases", label: _("办件受理") },
    { id: "review", label: _("在办") },
    { id: "done", label: _("办结") },
    { id: "onevisit", label: _("最多跑一次") },
    { id: "wait", label: _("平均等候") },
    { id: "sat", label: _("满意率") },
    { id: "follow", label: _("差评整改") }
  ];
  function kpiValues(d) {
    var f = d.figures, st = d.status;
    var online = st.online, enrolled = st.enrolled;
    var down = st.offline + st.never + st.revoked;
    return {
      online: { v: num(online) + "<small>/ " + num(enrolled) + "</small>",
                sub: _("离线") + " <b class='" + (down ? "red" : "") + "'>" + num(down) + "</b> · " +
                     _("未接入") + " <b>" + num(st.not_enrolled) + "</b>",
                cls: !enrolled ? "" : (down * 2 > enrolled ? "bad" : (down ? "warn" : "good")) },
      tickets: { v: num(f.tickets_issued), sub: _("叫号") + " <b>" + num(f.tickets_called) +
                 "</b> · " + _("过号") + " <b>" + num(f.tickets_no_show) + "</b>" },
      cases: { v: num(f.cases_received), sub: _("正式受理") + " <b>" + num(f.cases_accepted) +
               "</b> · " + _("投诉") + " <b>" + num(f.complaints) + "</b>" },
      review: { v: num(f.in_review), sub: _("超期在办") + " <b class='" + (f.overdue ? "red" : "") + "'>" +
                num(f.overdue) + "</b>", cls: f.overdue ? "warn" : "" },
      done: { v: num(f.cases_completed), sub: _("超期办结") + " <b class='" + (f.cases_late ? "red" : "") + "'>" +
              num(f.cases_late) + "</b> · " + _("出件") + " <b>" + num(f.cases_delivered) + "</b>" },
      onevisit: { v: f.one_visit_share === null ? "—" : (f.one_visit_share * 100).toFixed(1) + "<small>%</small>",
                  sub: _("出件 {n} 件", { n: num(f.cases_delivered) }) + " · <b>" + num(f.cases_one_visit) + "</b>",
                  cls: f.one_visit_share === null ? "" : (f.one_visit_share >= 0.9 ? "good" : "warn") },
      wait: { v: durHTML(f.avg_wait_s), sub: _("平均办理") + " <b>" + esc(dur(f.avg_service_s)) + "</b>" },
      sat: { v: f.satisfaction === null ? "—" : (f.satisfaction * 100).toFixed(1) + "<small>%</small>",
             sub: _("评价") + " <b>" + num(f.ratings) + "</b> · " + _("差评") +
                  " <b class='" + (f.bad_ratings ? "red" : "") + "'>" + num(f.bad_ratings) + "</b>",
             cls: f.satisfaction === null ? "" : (f.satisfaction >= 0.9 ? "good" : (f.satisfaction >= 0.75 ? "warn" : "bad")) },
      follow: { v: num(f.followups_closed) + "<small>/ " + num(f.followups_opened) + "</small>",
                sub: _("已办结 {closed} / 共 {opened}", { closed: num(f.followups_closed), opened: num(f.followups_opened) }),
                cls: f.followups_opened > f.followups_closed ? "warn" : "" }
    };
  }
  function renderKpis(d, first) {
    var vals = kpiValues(d);
    var box = document.getElementById("kpis");
    if (first || !box.children.length) {
      box.innerHTML = KPIS.map(function (k) {
        return "<div class='kpi' id='kpi-" + k.id + "'><div class='k-label'>" + esc(k.label) +
          "</div><div class='k-value'></div><div class='k-sub'></div></div>";
      }).join("");
    }
    KPIS.forEach(function (k) {
      var el = document.getElementById("kpi-" + k.id), v = vals[k.id];
      el.className = "kpi" + (v.cls ? " " + v.cls : "");
      var val = el.querySelector(".k-value");
      if (val.innerHTML !== v.v) {
        val.innerHTML = v.v;
        if (!first) { val.classList.remove("flash"); void val.offsetWidth; val.classList.add("flash"); }
      }
      el.querySelector(".k-sub").innerHTML = v.sub;
    });
  }

  /* ---------------------------------------------------------------- children table */
  function renderChildren(d) {
    var rows = d.children;
    var head = "<thead><tr><th>" + esc(_("名称")) + "</th><th>" + esc(_("在线")) + "</th><th>" +
      esc(_("接入")) + "</th><th>" +
      esc(_("最大延迟(秒)").replace("(秒)", "").replace(" (s)", "")) + "</th><th>" + esc(_("取号")) +
      "</th><th>" + esc(_("受理")) + "</th><th>" + esc(_("在办")) + "</th><th>" +
      esc(_("办结")) + "</th><th>" + esc(_("超期在办")) + "</th><th>" + esc(_("满意率")) +
      "</th><th>" + esc(_("告警")) + "</th></tr></thead>";
    var maxT = Math.max.apply(null, [1].concat(rows.map(function (r) { return r.tickets_issued; })));
    var html = rows.map(function (r) {
      var st = r.status;
      var name = r.own ? _("本级中心") + " · " + r.name : r.name;
      var tags = (r.known ? "" : "<span class='tag red'>" + esc(_("未知代码")) + "</span>");
      var link = r.own ? "" : " class='link' data-href='" + esc(drillHref(r.code)) + "'";
      var cls = r.own ? " class='own'" : link;
      var enrolled = st.enrolled, total = r.own ? 1 : st.divisions;
      var onlineTxt = enrolled ? num(st.online) + "<span class='muted'>/" + num(enrolled) + "</span>" :
        "<span class='muted'>—</span>";
      var cover = total ? num(enrolled) + "<span class='muted'>/" + num(total) + "</span>" : "<span class='muted'>—</span>";
      var bar = "<span class='bar' style='width:" + Math.round(26 * r.tickets_issued / maxT) + "px'></span>";
      return "<tr" + cls + " data-code='" + esc(r.code) + "'><td class='name'><span class='dot " + st.health +
        "' title='" + esc(HEALTH[st.health] || st.health) + "'></span>" +
        (r.own ? esc(name) : "<a href='" + esc(drillHref(r.code)) + "'>" + esc(name) + "</a>") + tags + "</td>" +
        "<td class='" + (st.offline + st.never ? "num-amber" : "") + "'>" + onlineTxt + "</td><td>" + cover + "</td><td class='" + (st.max_lag_s > d.online_seconds ? "num-amber" : "") + "'>" +
        esc(dur(st.max_lag_s)) + "</td><td>" + num(r.tickets_issued) + bar + "</td><td>" + num(r.cases_received) +
        "</td><td>" + num(r.in_review) + "</td><td>" + num(r.cases_completed) + "</td><td class='" +
        (r.overdue ? "num-red" : "") + "'>" + num(r.overdue) + "</td><td>" + pct(r.satisfaction) + "</td><td class='" +
        (st.open_alerts ? "num-red" : "") + "'>" + num(st.open_alerts) + "</td></tr>";
    }).join("");
    if (!rows.length) html = "<tr class='empty'><td colspan='11'>" + esc(_("暂无数据")) + "</td></tr>";
    document.getElementById("children").innerHTML = head + "<tbody>" + html + "</tbody>";
    renderCenter(d);
  }
  function renderCenter(d) {
    var box = document.getElementById("center"), n = d.center;
    var leaf = d.children.every(function (r) { return r.own; });
    if (!n || !leaf) { box.innerHTML = ""; box.hidden = true; return; }
    box.hidden = false;
    var alerts = Object.keys(n.alerts || {}).map(function (k) { return alertName(k) + " " + n.alerts[k]; }).join(" · ");
    var rows = [
      [pgettext("column", "状态"), "<span class='dot " + ({ online: "green", offline: "amber", never: "", revoked: "red" }[n.state] || "") +
        "'></span>" + esc(STATES[n.state] || n.state), n.state === "online" ? "green" : "amber"],
      [_("最近联系"), esc(fmtTime(n.last_contact)) + " <span class='muted'>(" + esc(dur(n.lag_s)) + ")</span>", ""],
      [_("最新记录时间"), esc(fmtTime(n.newest_at)) + " <span class='muted'>(" + esc(dur(n.behind_s)) + ")</span>", ""],
      [_("记录数"), num(n.records), ""],
      [_("积压"), num(n.backlog || 0), n.backlog ? "amber" : ""],
      [_("密钥"), esc(n.key_status === "active" ? _("全部正常") : _("已吊销")) + " <span class='muted'>" +
        esc(n.key_id) + "</span>", n.key_status === "active" ? "green" : "red"],
      [_("告警"), alerts ? esc(alerts) : "0", alerts ? "red" : ""],
      [_("最近错误"), n.last_error ? esc(n.last_error) : "—", n.last_error ? "red" : ""]
    ];
    box.innerHTML = "<h4>" + esc(_("本中心数据同步")) + "</h4><div class='kv big'>" + rows.map(function (r) {
      return "<span class='k'>" + esc(r[0]) + "</span><span class='v " + r[2] + "'>" + r[1] + "</span>";
    }).join("") + "</div>";
  }
  function fmtTime(iso) {
    if (!iso) return "—";
    try {
      return new Date(iso).toLocaleString(LANG === "en" ? "en-GB" : "zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
    } catch (e) { return iso; }
  }

  /* ---------------------------------------------------------------- breakdown */
  function renderBreakdown(d) {
    var rows = d[tab] || [];
    var isItem = tab === "items";
    var head = "<thead><tr><th>" + esc(isItem ? _("按事项") : _("部门")) + "</th>" +
      (isItem ? "<th>" + esc(_("部门")) + "</th>" : "") + "<th>" + esc(_("取号")) + "</th><th>" +
      esc(_("平均等候(秒)").replace("(秒)", "").replace(" (s)", "")) + "</th><th>" + esc(_("受理")) +
      "</th><th>" + esc(_("在办")) + "</th><th>" + esc(_("办结")) + "</th><th>" +
      esc(_("超期在办")) + "</th><th>" + esc(_("最多跑一次")) + "</th><th>" + esc(_("满意率")) +
      "</th></tr></thead>";
    var html = rows.map(function (r) {
      return "<tr><td class='name' title='" + esc(r.code) + "'>" + esc(r.name) + "</td>" +
        (isItem ? "<td class='muted'>" + esc(r.dept_name) + "</td>" : "") + "<td>" + num(r.tickets_issued) +
        "</td><td>" + esc(dur(r.avg_wait_s)) + "</td><td>" + num(r.cases_received) + "</td><td>" + num(r.in_review) +
        "</td><td>" + num(r.cases_completed) + "</td><td class='" + (r.overdue ? "num-red" : "") + "'>" +
        num(r.overdue) + "</td><td>" + pct(r.one_visit_share) + "</td><td>" + pct(r.satisfaction) + "</td></tr>";
    }).join("");
    if (!rows.length) html = "<tr class='empty'><td colspan='10'>" + esc(_("暂无数据")) + "</td></tr>";
    document.getElementById("breakdown").innerHTML = head + "<tbody>" + html + "</tbody>";
    var ex = document.getElementById("breakdown-export");
    ex.href = ex.getAttribute("data-base") + tab + ".csv?" + ex.getAttribute("data-query");
  }

  /* ---------------------------------------------------------------- trend chart (SVG) */
  var BARS = { key: "tickets_issued", label: _("取号"), color: "#3fd0ff" };
  var LINES = [
    { key: "cases_received", label: _("受理"), color: "#ffcf5a" },
    { key: "cases_completed", label: _("办结"), color: "#2fe39a" }
  ];
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function niceMax(v) {
    /* the smallest 4 x step >= v with step 1, 2 or 5 x 10^k (integer grid labels) */
    if (v <= 4) return 4;
    var raw = v / 4, p = Math.pow(10, Math.floor(Math.log10(raw))), n = raw / p;
    var m = n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10;
    return 4 * m * p;
  }
  function renderTrend(d) {
    var box = document.getElementById("trend");
    var series = d.series || [];
    var W = Math.max(320, box.clientWidth || 600), H = 250, L = 50, R = 46, T = 22, B = 28;
    var total = function (key) { return series.reduce(function (s, r) { return s + (r[key] || 0); }, 0); };
    // The chart's text alternative: the period and each series' total.
    var summary = _("每日趋势") + " " + d.trend_period.from + " – " + d.trend_period.to + ": " +
      [BARS].concat(LINES).map(function (s) { return s.label + " " + num(total(s.key)); }).join(", ");
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, height: H, role: "img", "aria-label": summary });
    svg.appendChild(el("title", {}, summary));
    var n = series.length, iw = W - L - R, ih = H - T - B;
    var maxT = niceMax(Math.max.apply(null, [0].concat(series.map(function (r) { return r[BARS.key]; }))));
    var maxC = niceMax(Math.max.apply(null, [0].concat(series.map(function (r) {
      return Math.max(r.cases_received, r.cases_completed);
    }))));
    var slot = n ? iw / n : iw;
    var x = function (i) { return L + slot * (i + 0.5); };
    var yT = function (v) { return T + ih - (v / maxT) * ih; };
    var yC = function (v) { return T + ih - (v / maxC) * ih; };
    var defs = el("defs");
    var g0 = el("linearGradient", { id: "barg", x1: 0, y1: 0, x2: 0, y2: 1 });
    g0.appendChild(el("stop", { offset: "0", "stop-color": "#3fd0ff", "stop-opacity": 0.95 }));
    g0.appendChild(el("stop", { offset: "1", "stop-color": "#1a5fb0", "stop-opacity": 0.35 }));
    defs.appendChild(g0);
    svg.appendChild(defs);
    for (var g = 0; g <= 4; g++) {
      var gy = T + ih - (ih * g) / 4;
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: gy, y2: gy, stroke: "#17365a", "stroke-dasharray": g ? "3 4" : "" }));
      svg.appendChild(el("text", { x: L - 8, y: gy + 4, "text-anchor": "end" }, num((maxT * g) / 4)));
      svg.appendChild(el("text", { x: W - R + 8, y: gy + 4, "text-anchor": "start" }, num((maxC * g) / 4)));
    }
    var bw = Math.max(4, Math.min(46, slot * 0.56));
    var step = Math.max(1, Math.ceil(n / 12));
    series.forEach(function (r, i) {
      var v = r[BARS.key], top = yT(v);
      var rect = el("rect", { x: x(i) - bw / 2, y: top, width: bw, height: Math.max(0, T + ih - top), rx: 2, fill: "url(#barg)" });
      rect.appendChild(el("title", {}, r.day + " " + BARS.label + " " + v));
      svg.appendChild(rect);
      if (n <= 16 && v) svg.appendChild(el("text", { x: x(i), y: top - 5, "text-anchor": "middle",
        style: "fill:#9fe4ff;font-size:11px" }, num(v)));
      if (i % step === 0 || i === n - 1) {
        svg.appendChild(el("text", { x: x(i), y: H - 8, "text-anchor": "middle" }, r.day.slice(5)));
      }
    });
    LINES.forEach(function (ln) {
      if (!n) return;
      var pts = series.map(function (r, i) { return x(i).toFixed(1) + "," + yC(r[ln.key]).toFixed(1); });
      if (n > 1) svg.appendChild(el("polyline", { points: pts.join(" "), fill: "none", stroke: ln.color,
        "stroke-width": 2.5, "stroke-linejoin": "round" }));
      series.forEach(function (r, i) {
        var c = el("circle", { cx: x(i), cy: yC(r[ln.key]), r: n > 20 ? 2.5 : 4, fill: "#07172d", stroke: ln.color, "stroke-width": 2 });
        c.appendChild(el("title", {}, r.day + " " + ln.label + " " + r[ln.key]));
        svg.appendChild(c);
      });
    });
    box.innerHTML = "";
    box.appendChild(svg);
    document.getElementById("trend-legend").innerHTML =
      "<span><i style='background:" + BARS.color + ";height:10px'></i>" + esc(BARS.label) + "</span>" +
      LINES.map(function (ln) {
        return "<span><i style='background:" + ln.color + "'></i>" + esc(ln.label) + "</span>";
      }).join("") + "<span class='muted'>" + esc(_("取号（左轴） 办件（右轴）")) + " · " + esc(d.trend_period.from) + " – " +
      esc(d.trend_period.to) + "</span>";
  }

  /* ---------------------------------------------------------------- status panel */
  function donut(parts, total, center, sub) {
    var size = 150, r = 56, cx = 75, cy = 75, C = 2 * Math.PI * r, off = 0;
    var svg = el("svg", { viewBox: "0 0 " + size + " " + size, width: size, height: size });
    svg.appendChild(el("circle", { cx: cx, cy: cy, r: r, fill: "none", stroke: "#14304f", "stroke-width": 16 }));
    parts.forEach(function (p) {
      if (!p.n || !total) return;
      var len = (p.n / total) * C;
      svg.appendChild(el("circle", { cx: cx, cy: cy, r: r, fill: "none", stroke: p.color, "stroke-width": 16,
        "stroke-dasharray": len + " " + (C - len), "stroke-dashoffset": -off, transform: "rotate(-90 75 75)" }));
      off += len;
    });
    svg.appendChild(el("text", { x: cx, y: cy + 6, "text-anchor": "middle", "class": "donut-center" }, center));
    svg.appendChild(el("text", { x: cx, y: cy + 26, "text-anchor": "middle", "class": "donut-sub" }, sub));
    return svg;
  }
  function renderStatus(d) {
    var st = d.status, box = document.getElementById("status");
    var parts = [
      { n: st.online, color: "#2fe39a" }, { n: st.offline, color: "#ffb21e" },
      { n: st.never, color: "#6b7f99" }, { n: st.revoked, color: "#ff5468" }
    ];
    var share = st.enrolled ? Math.round((100 * st.online) / st.enrolled) + "%" : "—";
    var alerts = Object.keys(st.alerts || {}).map(function (k) {
      return "<span class='chip red'>" + esc(alertName(k)) + " " + num(st.alerts[k]) + "</span>";
    }).join("");
    if (!alerts) alerts = "<span class='chip green'>" + esc(_("告警")) + " 0</span>";
    var keys = st.revoked ? "<span class='v red'>" + esc(_("已吊销")) + " " + num(st.revoked) + "</span>" :
      "<span class='v green'>" + esc(_("全部正常")) + "</span>";
    box.innerHTML = "<div class='status-wrap'><div class='donut'></div><div class='kv'>" +
      "<span class='k'><span class='dot green'></span>" + esc(_("在线")) + "</span><span class='v green'>" + num(st.online) + "</span>" +
      "<span class='k'><span class='dot amber'></span>" + esc(_("离线")) + "</span><span class='v " + (st.offline ? "amber" : "") + "'>" + num(st.offline) + "</span>" +
      "<span class='k'><span class='dot'></span>" + esc(_("未上线")) + " / " + esc(_("未接入")) + "</span><span class='v'>" + num(st.never) + " / " + num(st.not_enrolled) + "</span>" +
      "<span class='k'>" + esc(_("最大同步延迟")) + "</span><span class='v " + (st.max_lag_s > d.online_seconds ? "amber" : "") + "'>" + esc(dur(st.max_lag_s)) + "</span>" +
      "<span class='k'>" + esc(_("最新记录距今")) + "</span><span class='v'>" + esc(dur(st.max_behind_s)) + "</span>" +
      "<span class='k'>" + esc(_("待同步积压")) + "</span><span class='v " + (st.backlog ? "amber" : "") + "'>" + num(st.backlog) + "</span>" +
      "<span class='k'>" + esc(_("密钥状态")) + "</span>" + keys +
      (st.unknown_codes ? "<span class='k'>" + esc(_("未知区划代码")) + "</span><span class='v red'>" + num(st.unknown_codes) + "</span>" : "") +
      "</div></div><div class='alert-chips'>" + alerts + "</div>";
    box.querySelector(".donut").appendChild(donut(parts, st.enrolled, share, _("在线中心")));
  }

  /* ---------------------------------------------------------------- ratings */
  var RCOLORS = { 5: "#2fe39a", 4: "#7fdc6a", 3: "#ffcf5a", 2: "#ff9a3c", 1: "#ff5468" };
  function renderRatings(d) {
    var f = d.figures, total = f.ratings || 0;
    var html = [5, 4, 3, 2, 1].map(function (lv) {
      var n = f["rating_" + lv], w = total ? (100 * n) / total : 0;
      return "<div class='rating-row'><span>" + esc(RATINGS[lv]) + "</span><div class='track'><div class='fill' style='width:" +
        w.toFixed(1) + "%;background:" + RCOLORS[lv] + "'></div></div><span class='n'><b>" + num(n) + "</b> · " +
        (total ? w.toFixed(0) + "%" : "—") + "</span></div>";
    }).join("");
    html += "<div class='rating-foot'><span>" + esc(_("差评整改")) + " <b>" + num(f.followups_closed) + "/" +
      num(f.followups_opened) + "</b></span><span>" + esc(_("投诉")) + " <b>" + num(f.complaints) +
      "</b></span><span>" + esc(_("满意率")) + " <b>" + pct(f.satisfaction) + "</b></span></div>";
    document.getElementById("ratings").innerHTML = html;
  }

  /* ---------------------------------------------------------------- attention */
  function renderAttention(d) {
    var rows = d.attention || [];
    var html = rows.map(function (n) {
      var why = [];
      if (n.open_alerts) why.push(Object.keys(n.alerts).map(function (k) { return alertName(k) + " " + n.alerts[k]; }).join(" "));
      if (n.state !== "online") why.push((STATES[n.state] || n.state) + (n.lag_s !== null ? " " + dur(n.lag_s) : ""));
      var dot = n.state === "revoked" || n.open_alerts ? "red" : (n.state === "online" ? "green" : "amber");
      return "<div class='att'><span class='dot " + dot + "'></span><a href='" + esc(drillHref(n.code)) + "'>" +
        esc(n.name) + " <span class='muted'>" + esc(n.code) + "</span></a><span class='why" + (dot === "red" ? " red" : "") +
        "'>" + esc(why.join(" · ")) + "</span></div>";
    }).join("");
    if (!rows.length) html = "<div class='ok-note'>✓ " + esc(_("正常")) + "</div>";
    document.getElementById("attention").innerHTML = html;
  }

  /* ---------------------------------------------------------------- live */
  var stamp = null;
  function renderAll(d, first) {
    data = d;
    renderKpis(d, first);
    renderChildren(d);
    renderBreakdown(d);
    renderTrend(d);
    renderStatus(d);
    renderRatings(d);
    renderAttention(d);
    stamp = new Date();
    document.getElementById("div-name").textContent = d.division.name;
  }
  function setLive(ok) {
    var live = document.getElementById("live");
    live.classList.toggle("stale", !ok);
    var t = stamp ? stamp.toTimeString().slice(0, 8) : "";
    document.getElementById("live-text").textContent = ok ? _("实时") + " · " + _("更新于") + " " + t : _("连接中断");
  }
  function poll() {
    var url = "/api/v1/dash/" + encodeURIComponent(CODE) + "?" + periodQuery() + "&lang=" + LANG;
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); return null; }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (d) { if (d) { renderAll(d, false); setLive(true); } })
      .catch(function () { setLive(false); });
  }
  function tick() {
    var now = new Date();
    var tz = "Asia/Shanghai";
    try {
      document.getElementById("clock-time").textContent = now.toLocaleTimeString("zh-CN", { hour12: false, timeZone: tz });
      document.getElementById("clock-date").textContent = now.toLocaleDateString(LANG === "en" ? "en-GB" : "zh-CN",
        { year: "numeric", month: "long", day: "numeric", weekday: "long", timeZone: tz });
    } catch (e) {
      document.getElementById("clock-time").textContent = now.toTimeString().slice(0, 8);
    }
  }

  document.getElementById("children").addEventListener("click", function (ev) {
    var tr = ev.target.closest("tr[data-href]");
    if (tr && !ev.target.closest("a")) location.href = tr.getAttribute("data-href");
  });
  Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (b) {
    b.addEventListener("click", function () {
      tab = b.getAttribute("data-tab");
      Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (o) {
        o.classList.toggle("on", o === b);
        o.setAttribute("aria-selected", o === b ? "true" : "false");
        o.tabIndex = o === b ? 0 : -1;
      });
      document.getElementById("breakdown-panel").setAttribute("aria-labelledby", b.id);
      renderBreakdown(data);
    });
  });
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { renderTrend(data); }, 150);
  });

  renderAll(data, true);
  setLive(true);
  tick();
  setInterval(tick, 1000);
  setInterval(poll, Math.max(2, data.refresh_seconds || 10) * 1000);
  window.onestopDash = { poll: poll, data: function () { return data; } };
})();
