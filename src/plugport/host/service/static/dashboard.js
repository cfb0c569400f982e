// The dashboard: every tile loads on its own (a slow or failing widget shows its own error and
// never holds up the others), refreshes on its interval, on demand, and when its plugin
// invalidates it (the versions endpoint is polled). Actions in a tile are posted by
// plugport-ui.js, which swaps the re-rendered tree into the tile (its [data-pp-surface]) or opens
// the overlay the plugin answered with. Without scripts every tile has a link to its own page.
(function () {
  "use strict";
  var PARTIAL = { "x-plugport-partial": "1", "Accept": "application/json" };
  var board = document.querySelector("[data-testid=dashboard]");
  if (!board) return;
  var seen = {};

  function enhance(body) {
    if (window.PlugportUI && typeof window.PlugportUI.enhance === "function") {
      window.PlugportUI.enhance(body);
    }
  }

  function show(body, answer) {
    body.innerHTML = answer.html;
    body.setAttribute("aria-busy", "false");
    body.dataset.version = String(answer.version || 0);
    enhance(body);
  }

  function failed(body, message) {
    body.setAttribute("aria-busy", "false");
    var box = document.createElement("div");
    box.className = "pp-alert pp-level-bad pp-surface-error";
    box.setAttribute("role", "alert");
    box.dataset.testid = "surface-error";
    box.dataset.kind = "unreachable";
    box.textContent = message;
    body.replaceChildren(box);
  }

  function load(body) {
    body.setAttribute("aria-busy", "true");
    return fetch(body.dataset.ppSrc, { headers: PARTIAL, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (a) { return [r, a]; }); })
      .then(function (ra) {
        if (ra[1] && typeof ra[1].html === "string" && !ra[1].overlay) show(body, ra[1]);
        else failed(body, (ra[1] && ra[1].message) || "This tile could not be loaded (" + ra[0].status + ").");
      })
      .catch(function () { failed(body, "This tile could not be loaded: the service did not answer."); });
  }

  var bodies = Array.prototype.slice.call(board.querySelectorAll("[data-pp-src]"));
  bodies.forEach(function (body) {
    seen[body.dataset.ppSurface] = undefined;
    load(body);
    var every = parseInt(body.dataset.ppRefreshS || "0", 10);
    if (every > 0) setInterval(function () { load(body); }, every * 1000);
  });

  board.addEventListener("click", function (event) {
    var link = event.target.closest("[data-pp-refresh]");
    if (!link) return;
    event.preventDefault();
    var body = link.closest(".pp-tile").querySelector("[data-pp-src]");
    if (body) load(body);
  });

  var versionsUrl = board.dataset.versionsUrl;
  function poll() {
    fetch(versionsUrl, { headers: PARTIAL, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) {
        if (!answer) return;
        var versions = answer.versions || {};
        bodies.forEach(function (body) {
          var key = body.dataset.ppSurface;
          var now = versions[key] || 0;
          if (seen[key] !== undefined && seen[key] !== now) load(body);
          seen[key] = now;
        });
      })
      .catch(function () {});
  }
  if (versionsUrl) { poll(); setInterval(poll, 3000); }
})();
