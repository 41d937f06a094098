/* Admin page: add windows and users through the JSON API. */
(function () {
  "use strict";
  var OS = window.OS, _ = OS._;

  function payload(form) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) return;
      var v = el.value.trim();
      if (el.name === "queues") {
        out.queues = v === "*" ? ["*"] : v.split(/[,，\s]+/).filter(Boolean);
      } else if (el.type === "number") {
        if (v !== "") out[el.name] = Number(v);
      } else if (v !== "" || el.name === "password") {
        out[el.name] = v;
      }
    });
    return out;
  }

  Array.prototype.forEach.call(document.querySelectorAll(".js-api-form"), function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var alert = form.querySelector(".alert");
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      OS.api("POST", form.dataset.url, payload(form), window.CSRF_TOKEN).then(function (r) {
        button.disabled = false;
        alert.hidden = false;
        if (r.ok) {
          alert.className = "alert alert-ok";
          alert.textContent = _("已保存");
          setTimeout(function () { window.location.reload(); }, 700);
        } else {
          alert.className = "alert alert-error";
          alert.textContent = r.body.message || ("HTTP " + r.status);
          var field = r.body.field && form.querySelector('[name="' + r.body.field + '"]');
          if (field) field.focus();
        }
      });
    });
  });
  setInterval(function () {
    if (!document.querySelector(".js-api-form input:focus, .js-api-form select:focus")) {
      window.location.reload();
    }
  }, 60000);
})();
