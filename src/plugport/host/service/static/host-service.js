// Progressive enhancement for the host service's pages: every form also works without it.
// Actions on installed plugins are sent in the background and their row is updated in place;
// the progress view polls its operation instead of reloading the page.
(function () {
  "use strict";

  function flash(kind, text) {
    var area = document.getElementById("flash");
    if (!area) { return; }
    area.textContent = "";
    var p = document.createElement("p");
    p.className = "flash flash-" + kind;
    p.setAttribute("data-testid", "flash");
    p.setAttribute("data-kind", kind);
    p.textContent = text;
    area.appendChild(p);
  }

  // After a change made in place, the audit trail below is out of date: read it again.
  function refreshAudit() {
    var table = document.querySelector("[data-testid=audit] tbody");
    if (!table) { return; }
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.querySelector("[data-testid=audit] tbody");
        if (fresh) { table.replaceWith(fresh); }
      })
      .catch(function () {});  // the trail stays as it was; a reload shows it
  }

  function bindActions(root) {
    root.querySelectorAll("form[data-action-form]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = form.querySelector("button");
        if (button && button.getAttribute("data-action") === "uninstall" &&
            !window.confirm("Uninstall " + button.getAttribute("data-plugin") + "? Its data is kept.")) {
          return;
        }
        if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
        fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          headers: { "X-Plugport-Partial": "1" },
          credentials: "same-origin"
        }).then(function (response) {
          return response.json();
        }).then(function (answer) {
          if (answer.redirect) { window.location.assign(answer.redirect); return; }
          flash(answer.ok ? "success" : "error", answer.message || "Something went wrong.");
          var row = form.closest("tr");
          if (answer.ok) { refreshAudit(); }
          if (answer.ok && row) {
            if (answer.row) {
              var body = document.createElement("tbody");
              body.innerHTML = answer.row;
              var fresh = body.querySelector("tr");
              row.replaceWith(fresh);
              bindActions(fresh);
              var again = fresh.querySelector("button");
              if (again) { again.focus(); }
            } else {
              row.remove();
            }
          } else if (button) {
            button.disabled = false;
            button.removeAttribute("aria-busy");
          }
        }).catch(function () {
          form.submit();  // the network or the script failed: do it the plain way
        });
      });
    });
  }

  function poll(section) {
    var url = section.getAttribute("data-status-url");
    var state = section.getAttribute("data-state");
    if (state !== "queued" && state !== "running") { return; }
    window.setTimeout(function () {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (op) {
          var steps = section.querySelector("[data-testid=operation-steps]");
          if (steps && op.progress) {
            steps.textContent = "";
            op.progress.forEach(function (step) {
              var li = document.createElement("li");
              li.textContent = step.step + (step.total ? " (" + step.done + " of " + step.total + " bytes)" : "");
              steps.appendChild(li);
            });
          }
          section.querySelector("[data-testid=operation-state]").textContent = op.state;
          section.setAttribute("data-state", op.state);
          if (op.state === "succeeded" || op.state === "failed") {
            window.location.reload();  // the server renders the outcome, with its links
          } else {
            poll(section);
          }
        })
        .catch(function () { window.location.reload(); });
    }, 400);
  }

  document.addEventListener("DOMContentLoaded", function () {
    bindActions(document);
    var section = document.getElementById("operation");
    if (section) { poll(section); }
  });
})();
