/* Case pages (办件): intake, list, inbox, detail, overview.  Every change goes through the
   JSON API with the session's CSRF token; pages reload to show the new state. */
(function () {
  "use strict";
  var OS = window.OS, _ = OS._, esc = OS.esc, data = OS.data || {};
  var lang = data.lang || document.body.dataset.lang || "zh";
  var csrf = window.CSRF_TOKEN || "";
  var $ = function (id) { return document.getElementById(id); };
  var FLASH = "onestop.cases.flash";

  /* -- messages ---------------------------------------------------------------------- */
  function message(text, kind) {
    var box = $("msg");
    if (!box) { window.alert(text); return; }
    box.textContent = text;
    box.className = "alert alert-" + (kind === "ok" ? "ok" : kind === "warn" ? "warn" : kind === "info" ? "info" : "error");
    box.dataset.kind = kind || "error";
    box.hidden = false;
    if (box.scrollIntoView) box.scrollIntoView({ block: "nearest" });
  }

  function failure(r) {
    var sep = lang === "en" ? ": " : "：";
    var head = _("操作未完成");
    var why = { 403: _("无权操作"), 404: _("未找到"), 409: _("当前状态不允许此操作"),
                422: _("请检查填写内容") }[r.status];
    if (why) head += sep + why;
    var text = (r.body && r.body.message) || (r.status ? "HTTP " + r.status : _("网络异常，请稍后重试"));
    return head + sep + text;
  }

  function flashThenReload(text) {
    try { sessionStorage.setItem(FLASH, JSON.stringify({ text: text, kind: "ok" })); } catch (e) { /* private mode */ }
    window.location.reload();
  }

  function showFlash() {
    var raw = null;
    try { raw = sessionStorage.getItem(FLASH); sessionStorage.removeItem(FLASH); } catch (e) { return; }
    if (!raw) return;
    try { var f = JSON.parse(raw); message(f.text, f.kind); } catch (e) { /* ignore */ }
  }

  function post(url, body) { return OS.api("POST", url, body, csrf); }

  function upload(caseNo, code, file) {
    var fd = new FormData();
    fd.append("file", file, file.name);
    return fetch("/api/v1/cases/" + encodeURIComponent(caseNo) + "/materials/" + encodeURIComponent(code), {
      method: "POST", body: fd, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) { return { ok: r.ok, status: r.status, body: b }; });
    }, function () { return { ok: false, status: 0, body: { message: _("网络异常，请稍后重试") } }; });
  }

  function pick(obj, field) {
    field = field || "name";
    if (!obj) return "";
    return (lang === "en" && obj[field + "_en"]) ? obj[field + "_en"] : (obj[field + "_zh"] || obj.code || "");
  }

  /* Rows that open a case: the whole row is a link. */
  document.addEventListener("click", function (ev) {
    var tr = ev.target.closest("tr[data-href]");
    if (!tr || ev.target.closest("a, button, input, select, textarea, label, form")) return;
    window.location.href = tr.dataset.href;
  });

  showFlash();

  /* The inbox's department select applies at once. */
  var deptSelect = $("dept-select");
  if (deptSelect) deptSelect.addEventListener("change", function () { deptSelect.form.submit(); });

  /* -- intake ------------------------------------------------------------------------ */
  function intake() {
    var items = data.items || {};
    var selected = [];
    var received = {};
    var files = {};
    var preRef = null;
    var busy = false;
    var listEl = $("cat-list");

    function checklist() {
      var out = [], byCode = {};
      selected.forEach(function (code) {
        (items[code].materials || []).forEach(function (m) {
          if (byCode[m.code]) { byCode[m.code].critical = byCode[m.code].critical || !!m.critical; return; }
          var row = { code: m.code, name_zh: m.name_zh, name_en: m.name_en, critical: !!m.critical };
          byCode[m.code] = row;
          out.push(row);
        });
      });
      return out;
    }

    function deptNames() {
      var names = {}, order = [];
      selected.forEach(function (code) {
        var it = items[code];
        it.departments.forEach(function (d, i) {
          if (!names[d]) { names[d] = it.dept_names[i] || d; order.push(d); }
        });
      });
      return order.map(function (d) { return names[d]; });
    }

    function syncCatalog() {
      listEl.querySelectorAll(".cat-item").forEach(function (el) {
        var on = selected.indexOf(el.dataset.code) >= 0;
        el.classList.toggle("on", on);
        el.querySelector("input").checked = on;
      });
    }

    function renderSelected() {
      var box = $("selected");
      if (!selected.length) {
        box.innerHTML = '<span class="muted">' + esc(_("请在左侧勾选一个或多个办理事项")) + "</span>";
        return;
      }
      var promised = 0, statutory = 0;
      var chips = selected.map(function (code) {
        var it = items[code];
        promised = Math.max(promised, it.promised_days);
        statutory = Math.max(statutory, it.statutory_days);
        return '<span class="chip" data-code="' + esc(code) + '">' + esc(pick(it)) +
          '<button type="button" data-unselect="' + esc(code) + '" aria-label="×">×</button></span>';
      }).join("");
      var sep = lang === "en" ? " · " : " · ";
      box.innerHTML = chips + '<span class="sel-summary">' + esc(_("审查部门")) +
        (lang === "en" ? ": " : "：") + esc(deptNames().join(lang === "en" ? ", " : "、")) + sep +
        esc(promised === 1 ? _("承诺时限 1 个工作日（法定 {s} 个工作日）", { s: statutory }) :
          _("承诺时限 {n} 个工作日（法定 {s} 个工作日）", { n: promised, s: statutory })) + "</span>";
    }

    function renderChecklist() {
      var rows = checklist();
      var body = $("checklist-body");
      $("check-empty").hidden = rows.length > 0;
      $("checklist").hidden = rows.length === 0;
      $("tick-all").disabled = rows.length === 0;
      body.innerHTML = rows.map(function (m, i) {
        var got = !!received[m.code];
        var f = files[m.code];
        var cls = (got ? "got" : "miss") + (m.critical ? " crit-row" : "");
        var sub = lang === "en" ? m.name_zh : m.name_en;
        return '<tr data-material="' + esc(m.code) + '" class="' + cls + '">' +
          '<td class="c-tick"><input type="checkbox" class="m-got" data-code="' + esc(m.code) + '"' + (got ? " checked" : "") +
          ' aria-label="' + esc(_("已收取")) + '"></td>' +
          '<td><div class="m-name">' + (i + 1) + ". " + esc(pick(m)) + '</div><div class="m-en">' + esc(sub) + "</div></td>" +
          "<td>" + (m.critical ? '<span class="tag tag-crit">' + esc(_("必要")) + "</span>"
                               : '<span class="tag">' + esc(_("可容缺")) + "</span>") + "</td>" +
          '<td><label class="file-pick' + (f ? " has" : "") + '" title="' + esc(f ? f.name : "") + '">' +
          '<input type="file" class="m-file" data-code="' + esc(m.code) + '" hidden>' +
          esc(f ? f.name : _("选择文件")) + "</label></td></tr>";
      }).join("");
      renderVerdict(rows);
    }

    function renderVerdict(rows) {
      rows = rows || checklist();
      var missing = rows.filter(function (m) { return !received[m.code]; });
      var critical = missing.filter(function (m) { return m.critical; });
      var v = $("verdict"), commitBox = $("commit-box");
      var accept = false;
      if (!rows.length) {
        v.hidden = true; commitBox.hidden = true;
      } else if (!missing.length) {
        v.hidden = false; v.className = "verdict v-ok"; v.textContent = _("材料齐全，提交后即予受理。");
        commitBox.hidden = true; accept = true;
      } else if (critical.length) {
        v.hidden = false; v.className = "verdict v-bad";
        v.textContent = _("缺少 {n} 项必要材料：暂不受理，提交后出具一次性告知书。", { n: critical.length });
        commitBox.hidden = true;
      } else {
        v.hidden = false; v.className = "verdict v-warn";
        commitBox.hidden = false;
        accept = $("commitment").checked;
        v.textContent = accept ? _("容缺受理：缺少 {n} 项非必要材料，申请人承诺限期补交，将一并出具一次性告知书。", { n: missing.length }) :
          _("缺少 {n} 项非必要材料：申请人书面承诺限期补交的，可容缺受理。", { n: missing.length });
      }
      $("catch-up").disabled = !$("commitment").checked;
      var btn = $("submit");
      btn.textContent = accept || !rows.length ? _("受理并生成办件") : _("收件并出具告知书");
      btn.classList.toggle("btn-red", accept || !rows.length);
      btn.classList.toggle("btn-warn", !(accept || !rows.length));
      var haveWho = !!$("ticket").value || !!preRef;
      btn.disabled = busy || !rows.length || !haveWho;
      btn.title = !haveWho ? _("请选择号票或载入网上预审") : (!rows.length ? _("请至少选择一个办理事项") : "");
      var got = rows.length - missing.length;
      $("summary").innerHTML = rows.length ? esc(_("材料清单")) + " <b>" + got + " / " + rows.length + "</b>" +
        (critical.length ? ' · <span class="crit">' + esc(_("必要")) + " " + critical.length + "</span>" : "") : "";
    }

    function render() {
      syncCatalog();
      renderSelected();
      renderChecklist();
    }

    function select(code, on) {
      var i = selected.indexOf(code);
      if (on && i < 0 && items[code]) selected.push(code);
      if (!on && i >= 0) selected.splice(i, 1);
      render();
    }

    /* catalog search: name or code, zh or en */
    function filter() {
      var q = $("cat-search").value.trim().toLowerCase();
      var shown = 0;
      listEl.querySelectorAll(".cat-group").forEach(function (g) {
        var n = 0;
        g.querySelectorAll(".cat-item").forEach(function (el) {
          var hit = !q || el.dataset.search.indexOf(q) >= 0;
          el.hidden = !hit;
          if (hit) n++;
        });
        g.hidden = n === 0;
        shown += n;
      });
      $("cat-empty").hidden = shown > 0;
      $("cat-count").textContent = String(shown);
    }

    $("cat-search").addEventListener("input", filter);
    listEl.addEventListener("change", function (ev) {
      if (ev.target.classList.contains("cat-check")) select(ev.target.value, ev.target.checked);
    });
    $("selected").addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-unselect]");
      if (b) select(b.dataset.unselect, false);
    });
    $("checklist-body").addEventListener("change", function (ev) {
      var el = ev.target, code = el.dataset.code;
      if (el.classList.contains("m-got")) {
        received[code] = el.checked;
        renderChecklist();
      } else if (el.classList.contains("m-file")) {
        if (el.files && el.files[0]) { files[code] = el.files[0]; received[code] = true; }
        else delete files[code];
        renderChecklist();
      }
    });
    $("tick-all").addEventListener("click", function () {
      var rows = checklist();
      var all = rows.every(function (m) { return received[m.code]; });
      rows.forEach(function (m) { received[m.code] = !all; });
      renderChecklist();
    });
    $("commitment").addEventListener("change", function () { renderVerdict(); });
    $("ticket").addEventListener("change", function () {
      var opt = $("ticket").selectedOptions[0];
      if (opt && opt.dataset.item && !selected.length && items[opt.dataset.item]) select(opt.dataset.item, true);
      else renderVerdict();
    });

    /* online pre-application (网上预审): its items and provided materials */
    function loadPre() {
      var ref = $("pre-ref").value.trim().toUpperCase();
      if (!ref) { preRef = null; renderVerdict(); return; }
      OS.api("GET", "/api/v1/preapplications/" + encodeURIComponent(ref)).then(function (r) {
        if (!r.ok) { preRef = null; message(failure(r)); renderVerdict(); return; }
        var p = r.body.preapplication;
        preRef = p.ref;
        selected = [];
        p.items.forEach(function (it) { if (items[it.code]) selected.push(it.code); });
        received = {};
        p.materials.forEach(function (m) { received[m.code] = !!m.provided; });
        render();
        message(_("已载入预审 {ref}：{n} 个事项", { ref: p.ref, n: p.items.length }), "info");
      });
    }
    $("pre-load").addEventListener("click", loadPre);
    $("pre-ref").addEventListener("keydown", function (ev) { if (ev.key === "Enter") { ev.preventDefault(); loadPre(); } });
    $("pre-ref").addEventListener("input", function () { if (preRef && $("pre-ref").value.trim().toUpperCase() !== preRef) { preRef = null; renderVerdict(); } });

    function submit() {
      if (busy) return;
      var rows = checklist();
      if (!rows.length) { message(_("请至少选择一个办理事项"), "warn"); return; }
      if (!$("ticket").value && !preRef) { message(_("请选择号票或载入网上预审"), "warn"); return; }
      var body = {
        items: selected.slice(),
        received: rows.filter(function (m) { return received[m.code]; }).map(function (m) { return m.code; })
      };
      if ($("ticket").value) body.ticket_id = Number($("ticket").value);
      if (preRef) body.preapplication_id = preRef;
      var missing = rows.length - body.received.length;
      if (missing && !$("commit-box").hidden && $("commitment").checked) {
        body.commitment = true;
        if ($("catch-up").value) body.catch_up_date = $("catch-up").value;
      }
      busy = true;
      var btn = $("submit");
      btn.disabled = true;
      btn.textContent = _("正在提交…");
      document.body.classList.add("busy");
      post("/api/v1/cases", body).then(function (r) {
        if (!r.ok) {
          busy = false;
          document.body.classList.remove("busy");
          message(failure(r));
          renderVerdict();
          return;
        }
        var c = r.body.case;
        var todo = Object.keys(files).filter(function (code) { return rows.some(function (m) { return m.code === code; }); });
        var problems = [];
        var chain = Promise.resolve();
        todo.forEach(function (code, i) {
          chain = chain.then(function () {
            btn.textContent = _("正在上传扫描件 {i}/{n}…", { i: i + 1, n: todo.length });
            return upload(c.case_no, code, files[code]).then(function (u) {
              if (!u.ok) problems.push(_("扫描件 {name} 上传失败：{msg}", { name: files[code].name, msg: (u.body && u.body.message) || u.status }));
            });
          });
        });
        return chain.then(function () {
          document.body.classList.remove("busy");
          showResult(c);
          if (problems.length) message(problems.join("\n"), "warn");
        });
      });
    }
    $("submit").addEventListener("click", submit);

    function showResult(c) {
      var deptName = {};
      Object.keys(items).forEach(function (code) {
        items[code].departments.forEach(function (d, i) { deptName[d] = items[code].dept_names[i]; });
      });
      var missing = (c.materials || []).filter(function (m) { return m.state !== "received"; });
      var accepted = c.state === "accepted";
      var panel = $("result");
      panel.classList.toggle("r-pending", !accepted || missing.length > 0);
      $("result-case-no").textContent = c.case_no;
      $("result-state").innerHTML = '<span class="st-badge st-' + esc(c.state) + '" data-state="' + esc(c.state) + '">' +
        esc(lang === "en" ? c.state_name_en : c.state_name_zh) + "</span>" +
        (c.commitment ? ' <span class="tag tag-warn">' + esc(_("容缺受理")) + "</span>" : "");
      var text;
      if (!accepted) text = _("材料不全，暂未受理。请打印一次性告知书交申请人，补齐后凭办件编码补交。");
      else if (missing.length) text = _("已容缺受理。请打印一次性告知书交申请人，提醒其在 {date} 前补交。", { date: c.catch_up_date || c.promised_deadline || "" });
      else text = _("已受理，已短信告知申请人办件编码和承诺办结日期。");
      $("result-text").textContent = text;
      var facts = [
        [_("办理事项"), (c.items || []).map(function (it) { return pick(it); }).join(lang === "en" ? "; " : "；")],
        [_("审查部门"), (c.departments || []).map(function (d) { return deptName[d] || d; }).join(lang === "en" ? ", " : "、")],
        [_("申请人"), c.id_masked],
        [_("手机号"), c.phone_masked],
        [_("承诺办结"), c.promised_deadline || _("未受理，不计时")]
      ];
      $("result-facts").innerHTML = facts.map(function (f) {
        return "<div><dt>" + esc(f[0]) + "</dt><dd>" + esc(f[1]) + "</dd></div>";
      }).join("");
      $("result-missing").hidden = missing.length === 0;
      $("result-missing-list").innerHTML = missing.map(function (m) {
        return "<li>" + esc(pick(m)) + (m.critical ? ' <span class="tag tag-crit">' + esc(_("必要")) + "</span>" : "") + "</li>";
      }).join("");
      var notice = $("print-notice");
      notice.hidden = missing.length === 0;
      notice.href = "/cases/" + encodeURIComponent(c.case_no) + "/notice";
      $("open-case").href = "/cases/" + encodeURIComponent(c.case_no);
      ["intake-form", "ticket-warning", "no-tickets"].forEach(function (id) { if ($(id)) $(id).hidden = true; });
      document.querySelector(".intake-top").hidden = true;
      panel.hidden = false;
      document.body.dataset.caseNo = c.case_no;
      document.body.dataset.caseState = c.state;
    }

    (data.preselect || []).forEach(function (code) { if (items[code] && selected.indexOf(code) < 0) selected.push(code); });
    filter();
    render();
    var first = listEl.querySelector(".cat-item.on");
    if (first) listEl.scrollTop = first.closest(".cat-group").offsetTop;
  }

  /* -- case detail ------------------------------------------------------------------- */
  function detail() {
    var caseNo = data.case_no;
    var base = "/api/v1/cases/" + encodeURIComponent(caseNo);
    var busy = false;

    function act(url, body, done) {
      if (busy) return;
      busy = true;
      document.body.classList.add("busy");
      return post(url, body).then(function (r) {
        busy = false;
        document.body.classList.remove("busy");
        if (!r.ok) { message(failure(r)); return; }
        flashThenReload(done || _("操作成功"));
      });
    }

    document.querySelectorAll("form.decide").forEach(function (form) {
      form.addEventListener("submit", function (ev) { ev.preventDefault(); });
      form.addEventListener("click", function (ev) {
        var b = ev.target.closest("[data-decision]");
        if (!b) return;
        var decision = b.dataset.decision;
        var area = form.querySelector("textarea");
        var reason = area.value.trim();
        area.classList.remove("invalid");
        if (decision !== "approve" && !reason) {
          area.classList.add("invalid");
          area.focus();
          message(_("请填写理由"), "warn");
          return;
        }
        if (decision === "reject" && !window.confirm(_("确认对办件 {no} 作出不予许可决定？该决定将终止其他部门的审查。", { no: caseNo }))) return;
        var mats = Array.prototype.map.call(form.querySelectorAll('input[name="materials"]:checked'), function (i) { return i.value; });
        var body = { decision: decision };
        if (reason) body.reason = reason;
        if (decision === "supplement" && mats.length) body.materials = mats;
        act(base + "/reviews/" + encodeURIComponent(form.dataset.department), body, _("审查意见已提交"));
      });
    });

    var resultBtn = $("btn-result");
    if (resultBtn) resultBtn.addEventListener("click", function () { act(base + "/result", {}); });

    var hv = $("handover-form");
    if (hv) {
      var sync = function () {
        var mail = hv.querySelector('input[name="method"]:checked').value === "mail";
        hv.querySelectorAll(".hv-tracking").forEach(function (el) { el.hidden = !mail; });
        hv.querySelector(".hv-ticket").hidden = mail;
      };
      hv.addEventListener("change", sync);
      sync();
      hv.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var method = hv.querySelector('input[name="method"]:checked').value;
        var body = { method: method };
        if (method === "mail") {
          body.tracking = $("hv-tracking").value.trim();
          body.channel = $("hv-channel").value;
        }
        else if ($("hv-ticket").value) body.ticket_id = Number($("hv-ticket").value);
        act(base + "/handover", body);
      });
    }

    var sup = $("supplement-form");
    if (sup) {
      var supSync = function () {
        sup.querySelector(".sup-ticket").hidden = $("sup-channel").value !== "window";
      };
      $("sup-channel").addEventListener("change", supSync);
      supSync();
      sup.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var codes = Array.prototype.map.call(sup.querySelectorAll('input[name="received"]:checked'), function (i) { return i.value; });
        var channel = $("sup-channel").value;
        var body = { received: codes, channel: channel };
        if (channel === "window" && $("sup-ticket").value) body.ticket_id = Number($("sup-ticket").value);
        var c = sup.querySelector('input[name="commitment"]');
        if (c && c.checked) {
          body.commitment = true;
          var d = sup.querySelector('input[name="catch_up_date"]').value;
          if (d) body.catch_up_date = d;
        }
        act(base + "/supplement", body);
      });
    }

    document.querySelectorAll("input.upload").forEach(function (input) {
      input.addEventListener("change", function () {
        var f = input.files && input.files[0];
        if (!f || busy) return;
        busy = true;
        upload(caseNo, input.dataset.material, f).then(function (r) {
          busy = false;
          if (!r.ok) { message(failure(r)); return; }
          flashThenReload(_("已上传 {name}", { name: f.name }));
        });
      });
    });

    var idBtn = $("btn-identity");
    if (idBtn) idBtn.addEventListener("click", function () {
      OS.api("GET", base + "/identity").then(function (r) {
        if (!r.ok) { message(failure(r)); return; }
        $("applicant-id").innerHTML = '<span class="revealed">' + esc(r.body.id_number) + "</span>";
        $("applicant-phone").innerHTML = '<span class="revealed">' + esc(r.body.phone) + "</span>";
        idBtn.disabled = true;
      });
    });
  }

  /* -- overview: close follow-ups ---------------------------------------------------- */
  function overview() {
    document.querySelectorAll("form.followup-close").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var note = form.querySelector("input[name=note]").value.trim();
        if (!note) { form.querySelector("input[name=note]").focus(); return; }
        post("/api/v1/followups/" + encodeURIComponent(form.dataset.id) + "/close", { note: note }).then(function (r) {
          if (!r.ok) { message(failure(r)); return; }
          flashThenReload(_("操作成功"));
        });
      });
    });
  }

  if ($("intake-form")) intake();
  if (data.case_no && $("case-head")) detail();
  if (document.body.classList.contains("page-overview")) overview();
})();
