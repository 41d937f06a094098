/* Shared helpers for the onestop node pages (no dependencies, works offline). */
(function () {
  "use strict";
  var dataEl = document.getElementById("page-data");
  var data = dataEl ? JSON.parse(dataEl.textContent) : {};
  /* The page's messages from the catalog: {zh-CN msgid: text in the page language}, a context
     as "context\u0004msgid" (onestop.i18n.script_messages). */
  var strings = data.strings || {};

  function fill(s, vars) {
    if (vars) {
      Object.keys(vars).forEach(function (k) {
        s = s.split("{" + k + "}").join(String(vars[k]));
      });
    }
    return s;
  }

  function _(msgid, vars) {
    return fill(Object.prototype.hasOwnProperty.call(strings, msgid) ? strings[msgid] : msgid, vars);
  }

  function pgettext(context, msgid, vars) {
    var key = context + "\u0004" + msgid;
    return fill(Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : msgid, vars);
  }

  function esc(value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  /* fetch JSON; resolves {ok, status, body} and never throws for HTTP errors. */
  function api(method, url, body, csrf) {
    var headers = { "Accept": "application/json",
                    "Accept-Language": document.documentElement.lang || "zh-CN" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(url, {
      method: method,
      headers: headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = { message: text }; }
        return { ok: r.ok, status: r.status, body: parsed || {} };
      });
    }, function () {
      return { ok: false, status: 0, body: { message: _("网络异常，请稍后重试") } };
    });
  }

  /* "12:05:09" in the center's time zone (falls back to the browser's). */
  function timeIn(date, tz, withSeconds) {
    var opts = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (withSeconds !== false) opts.second = "2-digit";
    try { opts.timeZone = tz; return new Intl.DateTimeFormat("en-GB", opts).format(date); }
    catch (e) { delete opts.timeZone; return new Intl.DateTimeFormat("en-GB", opts).format(date); }
  }

  function dateIn(date, tz, lang) {
    var opts = { year: "numeric", month: "long", day: "numeric", weekday: "long" };
    var locale = lang === "en" ? "en-GB" : "zh-CN";
    try { opts.timeZone = tz; return new Intl.DateTimeFormat(locale, opts).format(date); }
    catch (e) { delete opts.timeZone; return new Intl.DateTimeFormat(locale, opts).format(date); }
  }

  function queueName(q, lang) {
    if (!q) return "";
    return (lang === "en" && q.name_en) ? q.name_en : (q.name_zh || q.code || "");
  }

  window.OS = { data: data, _: _, pgettext: pgettext, esc: esc, api: api, timeIn: timeIn, dateIn: dateIn,
                queueName: queueName };
})();
