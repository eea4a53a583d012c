// Live preview for the post form: a moment after the author stops typing, the body goes
// to POST /preview (with the form's CSRF token) and the pane shows the HTML saving would
// store, or the reason it would be refused. Without this script the form's Preview
// button shows the same on a full page.
(function () {
  "use strict";
  var body = document.getElementById("body");
  var pane = document.getElementById("preview");
  var out = document.getElementById("preview-body");
  if (!body || !pane || !out || !body.form || !window.fetch || !window.URLSearchParams) {
    return;
  }
  var token = body.form.elements.namedItem("csrf_token");
  if (!token) {
    return;
  }
  var DELAY_MS = 400;
  var timer = null;
  var sent = 0;
  var shown = 0;

  function showError(message) {
    out.classList.add("preview-error");
    out.textContent = message;
  }

  function update() {
    var seq = ++sent;
    var data = new URLSearchParams();
    data.set("csrf_token", token.value);
    data.set("body", body.value);
    fetch("/preview", { method: "POST", body: data, credentials: "same-origin" })
      .then(function (res) {
        return res.text().then(function (text) {
          return { status: res.status, ok: res.ok, text: text };
        });
      })
      .then(function (answer) {
        // An answer to an older request that arrived after a newer one: not shown.
        if (seq <= shown) {
          return;
        }
        shown = seq;
        if (answer.ok) {
          out.classList.remove("preview-error");
          // The server's sanitized HTML, the same the post page shows once saved.
          out.innerHTML = answer.text;
        } else if (answer.status === 422 || answer.status === 503) {
          showError(answer.text);
        } else if (answer.status === 403) {
          showError("The preview was refused (the login may have ended): reload the page and try again.");
        } else {
          showError("The preview is not available right now (" + answer.status + ").");
        }
      })
      .catch(function () {
        if (seq > shown) {
          shown = seq;
          showError("The preview could not reach the server.");
        }
      });
  }

  body.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(update, DELAY_MS);
  });
  pane.hidden = false;
  if (body.value && !out.innerHTML.trim()) {
    update();
  }
})();
