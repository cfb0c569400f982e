// The bridge client the host puts first in every custom view (it runs inside the sandboxed,
// opaque-origin frame, before the view's own scripts). It offers exactly two things:
//   window.plugport.call(name, payload) -> Promise of what the plugin's @view handler returned
//   window.plugport.theme               -> the host theme's values ({"bg": "#f7f8fa", ...});
//                                          the same values are CSS variables (var(--bg)) already
// A call is a typed message to the host page, which forwards it to this view's own plugin and
// view only (chosen by the page, never by the message) and answers with a "result" message.
(function () {
  "use strict";

  var script = document.currentScript;
  var theme = {};
  try {
    theme = JSON.parse((script && script.getAttribute("data-theme")) || "{}");
  } catch (ignored) {
    theme = {};
  }
  Object.freeze(theme);

  var pending = Object.create(null);
  var nextId = 1;
  var NAME = /^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)*$/;

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) { return; }  // only the host page answers calls
    var message = event.data;
    if (!message || message.plugport !== 1 || message.type !== "result") { return; }
    var waiting = pending[message.id];
    if (!waiting) { return; }
    delete pending[message.id];
    if (message.ok === true) {
      waiting.resolve(message.value);
    } else {
      waiting.reject(new Error(typeof message.error === "string" ? message.error : "the call failed"));
    }
  });

  function call(name, payload) {
    return new Promise(function (resolve, reject) {
      if (typeof name !== "string" || name.length > 100 || !NAME.test(name)) {
        reject(new Error("a call's name is lower-case letters, digits, '_' and '-' in dot-separated parts"));
        return;
      }
      if (payload === undefined) { payload = {}; }
      if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
        reject(new Error("a call's payload is an object"));
        return;
      }
      var id = nextId++;
      pending[id] = { resolve: resolve, reject: reject };
      // The host page's origin is not ours to know (this frame's origin is opaque), hence "*":
      // the message carries only what the view itself chose to send, and the page checks that
      // it came from this frame (event.source) before doing anything with it.
      window.parent.postMessage(
        { plugport: 1, type: "call", id: id, name: name, payload: payload }, "*"
      );
    });
  }

  window.plugport = Object.freeze({ call: call, theme: theme });
})();
