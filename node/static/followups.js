/* Follow-ups of bad ratings: record the call back and the fix, decide appeals (JSON API with
   the session's CSRF token); the page reloads with the new state. */
(function () {
  "use strict";
  var OS = window.OS;
  document.querySelectorAll("form.fu-form").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = { note: form.elements.note.value };
      if (ev.submitter && ev.submitter.name === "decision") body.decision = ev.submitter.value;
      OS.api("POST", form.getAttribute("data-action"), body, OS.data.csrf).then(function (r) {
        if (r.ok) { window.location.reload(); return; }
        var msg = form.querySelector(".fu-msg") || document.createElement("span");
        msg.className = "fu-msg";
        msg.setAttribute("role", "alert");
        msg.textContent = (r.body && r.body.message) || OS._("网络异常，请稍后重试");
        form.appendChild(msg);
      });
    });
  });
})();
