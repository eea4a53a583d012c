// Passkeys: each form with data-passkey ("create" to add one, "get" to log in with one)
// first asks its data-options URL for the WebAuthn options (a POST with the form's CSRF
// token), hands them to the browser's navigator.credentials, puts the answer in the
// form's hidden "credential" field as JSON and submits the form as usual. The forms
// stay hidden in browsers without WebAuthn (and without JavaScript), where the
// password and code forms still work.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch) {
    return;
  }

  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      out[i] = raw.charCodeAt(i);
    }
    return out.buffer;
  }

  function toText(buffer) {
    if (!buffer) {
      return null;
    }
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function idsToBytes(list) {
    (list || []).forEach(function (c) {
      c.id = toBytes(c.id);
    });
  }

  function creationOptions(json) {
    var o = json.publicKey;
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    idsToBytes(o.excludeCredentials);
    return { publicKey: o };
  }

  function requestOptions(json) {
    var o = json.publicKey;
    o.challenge = toBytes(o.challenge);
    idsToBytes(o.allowCredentials);
    return { publicKey: o };
  }

  function created(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toText(r.attestationObject),
        clientDataJSON: toText(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function asserted(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toText(r.authenticatorData),
        clientDataJSON: toText(r.clientDataJSON),
        signature: toText(r.signature),
        userHandle: toText(r.userHandle)
      },
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function setUp(form) {
    var kind = form.getAttribute("data-passkey");
    var url = form.getAttribute("data-options");
    var token = form.elements.namedItem("csrf_token");
    var field = form.elements.namedItem("credential");
    var error = form.querySelector("[data-passkey-error]");
    var button = form.querySelector("button[type=submit]");
    if (!url || !token || !field || (kind !== "create" && kind !== "get")) {
      return;
    }

    function fail(message) {
      if (button) {
        button.disabled = false;
      }
      if (error) {
        error.textContent = message;
        error.hidden = false;
      }
    }

    form.addEventListener("submit", function (event) {
      if (field.value) {
        return;
      }
      event.preventDefault();
      if (button) {
        button.disabled = true;
      }
      if (error) {
        error.hidden = true;
      }
      var data = new URLSearchParams();
      data.set("csrf_token", token.value);
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: data.toString()
      })
        .then(function (res) {
          return res.json().then(function (json) {
            if (!res.ok || json.error) {
              throw new Error(json.error || "The site did not answer; try again.");
            }
            return json;
          });
        })
        .then(function (json) {
          if (kind === "create") {
            return navigator.credentials.create(creationOptions(json)).then(created);
          }
          return navigator.credentials.get(requestOptions(json)).then(asserted);
        })
        .then(function (answer) {
          field.value = JSON.stringify(answer);
          form.submit();
        })
        .catch(function (e) {
          if (e && e.name === "NotAllowedError") {
            fail("The passkey request was cancelled or timed out. Try again.");
          } else if (e && e.name === "InvalidStateError") {
            fail("This device already holds a passkey for your account.");
          } else {
            fail((e && e.message) || "The passkey did not work; try again.");
          }
        });
    });
    form.hidden = false;
  }

  var forms = document.querySelectorAll("form[data-passkey]");
  for (var i = 0; i < forms.length; i++) {
    setUp(forms[i]);
  }
})();
