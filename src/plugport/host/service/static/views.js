// The host side of a custom view's bridge. The view runs in <iframe sandbox="allow-scripts">
// (an opaque origin: it cannot read this page, its cookies or the network); the only thing it
// can do here is post typed call messages, which this script forwards to the one route of its
// own plugin and view, taken from the iframe element's data attributes (written by the host),
// never from the message. Anything that is not exactly a call from that frame is ignored or
// refused, and nothing but the handler's answer (or an error message) goes back.
(function () {
  "use strict";

  var NAME = /^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)*$/;
  var KEYS = ["id", "name", "payload", "plugport", "type"];
  var MAX_PAYLOAD_BYTES = 64 * 1024;
  var MAX_IN_FLIGHT = 8;

  function bind(frame) {
    var callsUrl = frame.getAttribute("data-calls-url");
    var csrf = frame.getAttribute("data-csrf");
    var inFlight = 0;

    function reply(id, ok, valueOrError) {
      var target = frame.contentWindow;
      if (!target) { return; }
      var message = { plugport: 1, type: "result", id: id, ok: ok };
      if (ok) { message.value = valueOrError; } else { message.error = String(valueOrError); }
      // "*" because the frame's origin is opaque ("null" is not a target origin a browser
      // accepts): the answer is posted to this frame's window only, and holds nothing but
      // what the view's own handler returned (or why the call failed), never a token or a
      // cookie, so whatever document is in the frame may read it.
      target.postMessage(message, "*");
    }

    function validId(id) {
      return typeof id === "number" && Math.floor(id) === id && id >= 0 && id <= 2147483647;
    }

    window.addEventListener("message", function (event) {
      if (event.source !== frame.contentWindow) { return; }  // another window: not ours
      var message = event.data;
      if (!message || typeof message !== "object" || Array.isArray(message)) { return; }
      if (message.plugport !== 1 || message.type !== "call" || !validId(message.id)) { return; }
      var unknown = Object.keys(message).filter(function (key) { return KEYS.indexOf(key) < 0; });
      if (unknown.length) {
        // e.g. a "plugin" or "view" field: calls go to this view's own plugin, whatever they say
        reply(message.id, false, "a call has only plugport, type, id, name and payload");
        return;
      }
      if (typeof message.name !== "string" || message.name.length > 100 || !NAME.test(message.name)) {
        reply(message.id, false, "a call's name is lower-case letters, digits, '_' and '-' in dot-separated parts");
        return;
      }
      var payload = message.payload === undefined ? {} : message.payload;
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        reply(message.id, false, "a call's payload is an object");
        return;
      }
      var body;
      try {
        body = JSON.stringify({ name: message.name, payload: payload });
      } catch (error) {
        reply(message.id, false, "a call's payload must be JSON");
        return;
      }
      if (new Blob([body]).size > MAX_PAYLOAD_BYTES + 1024) {
        reply(message.id, false, "a call's payload may be at most " + MAX_PAYLOAD_BYTES + " bytes");
        return;
      }
      if (inFlight >= MAX_IN_FLIGHT) {
        reply(message.id, false, "too many calls at once; wait for an answer first");
        return;
      }
      inFlight += 1;
      fetch(callsUrl, {
        method: "POST",
        body: body,
        headers: { "Content-Type": "application/json", "X-Plugport-Csrf": csrf },
        credentials: "same-origin",
        redirect: "error"
      }).then(function (response) {
        return response.json();
      }).then(function (answer) {
        if (answer && answer.ok === true) {
          reply(message.id, true, answer.value);
        } else {
          reply(message.id, false, (answer && answer.error) || "the call failed");
        }
      }).catch(function () {
        reply(message.id, false, "the host could not be reached");
      }).then(function () {
        inFlight -= 1;
      });
    });
    // Loaded only now, once the listener above is in place: a view's first call is never lost.
    frame.src = frame.getAttribute("data-src");
  }

  document.querySelectorAll("iframe[data-custom-view]").forEach(bind);
})();
