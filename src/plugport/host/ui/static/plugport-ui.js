// plugport-ui.js: what makes plugin surfaces (component trees the host rendered) quicker to use.
// Every surface works without it: forms post and the server answers with a whole page. With it,
// a button or form is answered in place (or with an overlay), tables sort and page, tabs switch
// from the keyboard, overlays keep the focus until closed, and PlugportUI.mount keeps a surface
// fresh. No dependency; everything it inserts is markup the host rendered and escaped.
(function () {
  "use strict";

  var PARTIAL = { "X-Plugport-Partial": "1", "Accept": "application/json" };
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), " +
    "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";
  var overlays = [];  // open overlays, the top one last

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

  function busy(element, on) {
    if (!element) { return; }
    if (on) { element.setAttribute("aria-busy", "true"); } else { element.removeAttribute("aria-busy"); }
    element.querySelectorAll("button[type=submit]").forEach(function (button) { button.disabled = on; });
  }

  function fromHtml(html) {
    var holder = document.createElement("div");
    holder.innerHTML = html;  // the host's own escaped markup; scripts in it would not run
    return holder;
  }

  // --- forms: answered in place ----------------------------------------------------------------

  function actionOf(form) {
    var field = form.querySelector("input[name=action]");
    return field ? field.value : null;
  }

  function refocus(surface, action) {
    var again = null;
    if (action) {
      surface.querySelectorAll("form[data-pp-action] input[name=action]").forEach(function (field) {
        if (!again && field.value === action) { again = field.form.querySelector("button[type=submit]"); }
      });
    }
    if (again) { again.focus(); return; }
    if (!surface.hasAttribute("tabindex")) { surface.setAttribute("tabindex", "-1"); }
    surface.focus();
  }

  function swap(surface, html) {
    surface.innerHTML = html;
    enhance(surface);
    surface.dispatchEvent(new CustomEvent("pp:updated", { bubbles: true }));
  }

  function post(form, submitter) {
    var overlay = form.closest("[data-pp-overlay]");
    var surface = form.closest("[data-pp-surface]") || (overlay && overlay._ppSurface) || null;
    var action = actionOf(form);
    var data = new FormData(form);
    if (submitter && submitter.name) { data.append(submitter.name, submitter.value); }
    busy(form, true);
    // Not form.action: a field named "action" (every surface form has one) shadows it.
    var url = new URL(form.getAttribute("action") || "", document.baseURI).href;
    fetch(url, { method: "POST", body: data, headers: PARTIAL, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        busy(form, false);
        if (!answer || answer.ok === false) {
          flash("error", (answer && answer.message) || "Something went wrong; nothing was changed.");
          return;
        }
        if (answer.message) { flash(answer.kind || "success", answer.message); }
        if (answer.close && overlay) { closeOverlay(overlay); }
        if (typeof answer.html !== "string") { return; }
        if (answer.overlay) {
          var back = overlay ? overlay._ppReturn : (submitter || form.querySelector("button"));
          if (overlay) { closeOverlay(overlay, true); }
          showOverlay(answer.html, { returnTo: back, surface: surface });
          return;
        }
        if (overlay) { closeOverlay(overlay, true); }
        if (surface) {
          swap(surface, answer.html);
          refocus(surface, action);
        }
      })
      .catch(function () {
        busy(form, false);
        HTMLFormElement.prototype.submit.call(form);  // the plain way: the server draws a page
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) { return; }
    var submitter = event.submitter || form.querySelector("[data-pp-confirm]");
    var question = submitter && submitter.getAttribute("data-pp-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (!form.hasAttribute("data-pp-action")) { return; }
    event.preventDefault();
    post(form, event.submitter || null);
  });

  // --- overlays --------------------------------------------------------------------------------

  function focusables(box) {
    return Array.prototype.filter.call(box.querySelectorAll(FOCUSABLE), function (el) {
      return el.offsetParent !== null;
    });
  }

  function openOverlay(overlay, options) {
    if (overlay._ppOpen) { return; }
    options = options || {};
    overlay._ppOpen = true;
    overlay._ppReturn = options.returnTo || overlay._ppReturn || document.activeElement;
    overlay._ppSurface = options.surface || overlay._ppSurface ||
      document.querySelector("[data-pp-surface]");
    overlays.push(overlay);
    document.body.classList.add("pp-has-overlay");
    var box = overlay.querySelector(".pp-overlay-box") || overlay;
    if (!box.hasAttribute("tabindex")) { box.setAttribute("tabindex", "-1"); }
    box.focus();
  }

  function closeOverlay(overlay, keepFocus) {
    var at = overlays.indexOf(overlay);
    if (at >= 0) { overlays.splice(at, 1); }
    overlay._ppOpen = false;
    overlay.remove();
    if (!overlays.length) { document.body.classList.remove("pp-has-overlay"); }
    if (keepFocus) { return; }
    var back = overlay._ppReturn;
    if (back && document.contains(back) && typeof back.focus === "function") {
      back.focus();
    } else {
      var main = document.getElementById("main");
      if (main) { main.focus(); }
    }
  }

  function showOverlay(html, options) {
    var overlay = fromHtml(html).querySelector("[data-pp-overlay]");
    if (!overlay) { return null; }
    document.body.appendChild(overlay);
    enhance(overlay);
    openOverlay(overlay, options);
    return overlay;
  }

  document.addEventListener("keydown", function (event) {
    var overlay = overlays[overlays.length - 1];
    if (!overlay) { return; }
    if (event.key === "Escape") {
      event.preventDefault();
      closeOverlay(overlay);
      return;
    }
    if (event.key !== "Tab") { return; }
    var box = overlay.querySelector(".pp-overlay-box") || overlay;
    var items = focusables(box);
    if (!items.length) { event.preventDefault(); box.focus(); return; }
    var first = items[0];
    var last = items[items.length - 1];
    var active = document.activeElement;
    if (!box.contains(active)) {
      event.preventDefault();
      first.focus();
    } else if (event.shiftKey && (active === first || active === box)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && active === last) {
      event.preventDefault();
      first.focus();
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) { return; }
    var close = target.closest("[data-pp-close]");
    var overlay = close ? close.closest("[data-pp-overlay]") : null;
    if (close && overlay && overlay._ppOpen) {
      event.preventDefault();
      closeOverlay(overlay);
    } else if (target.hasAttribute("data-pp-overlay") && target._ppOpen) {
      closeOverlay(target);  // a click on the backdrop, outside the box
    }
  });

  // --- tables: sort and page -------------------------------------------------------------------

  function sortValue(cell) {
    var given = cell.getAttribute("data-pp-sort");
    if (given !== null && given !== "" && !isNaN(Number(given))) { return { number: Number(given) }; }
    return { text: cell.textContent.trim() };
  }

  function compare(a, b) {
    if ("number" in a && "number" in b) { return a.number - b.number; }
    var x = "number" in a ? String(a.number) : a.text;
    var y = "number" in b ? String(b.number) : b.text;
    return x.localeCompare(y, undefined, { numeric: true, sensitivity: "base" });
  }

  function enhanceTable(table) {
    if (table._ppTable) { return; }
    table._ppTable = true;
    var body = table.tBodies[0];
    if (!body) { return; }
    var rows = Array.prototype.filter.call(body.rows, function (row) {
      return !row.querySelector(".pp-empty");
    });
    var size = parseInt(table.getAttribute("data-pp-page-size") || "0", 10) || 0;
    var state = { page: 0, rows: rows };
    var wrap = table.closest(".pp-table-wrap") || table;
    var status = document.createElement("p");
    status.className = "pp-table-status visually-hidden";
    status.setAttribute("aria-live", "polite");
    status.setAttribute("data-pp-table-status", "");
    var pager = null;
    var prev = null;
    var next = null;
    var pages = function () { return Math.max(1, Math.ceil(state.rows.length / size)); };

    function show(said) {
      state.rows.forEach(function (row, index) {
        row.hidden = size > 0 && Math.floor(index / size) !== state.page;
      });
      var where = "";
      if (pager) {
        where = "Page " + (state.page + 1) + " of " + pages();
        pager.querySelector("[data-pp-page]").textContent = where;
        prev.disabled = state.page === 0;
        next.disabled = state.page >= pages() - 1;
      }
      status.textContent = [said, where].filter(Boolean).join(". ");
    }

    if (table.hasAttribute("data-pp-sortable") && table.tHead && rows.length > 1) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "pp-sort";
        while (th.firstChild) { button.appendChild(th.firstChild); }
        var mark = document.createElement("span");
        mark.className = "pp-sort-mark";
        mark.setAttribute("aria-hidden", "true");
        button.appendChild(mark);
        th.appendChild(button);
        th.setAttribute("aria-sort", "none");
        button.addEventListener("click", function () {
          var order = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
          Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) {
            if (other !== th) { other.setAttribute("aria-sort", "none"); }
          });
          th.setAttribute("aria-sort", order);
          var keyed = state.rows.map(function (row, index) {
            return { row: row, index: index, value: sortValue(row.cells[column] || row) };
          });
          keyed.sort(function (a, b) {
            var c = compare(a.value, b.value);
            return (order === "ascending" ? c : -c) || a.index - b.index;
          });
          state.rows = keyed.map(function (k) { return k.row; });
          state.rows.forEach(function (row) { body.appendChild(row); });
          state.page = 0;
          show("Sorted by " + button.textContent.trim() + ", " + order);
        });
      });
    }

    if (size > 0 && rows.length > size) {
      pager = document.createElement("div");
      pager.className = "pp-pager";
      pager.setAttribute("role", "group");
      pager.setAttribute("aria-label", "Table pages");
      prev = document.createElement("button");
      prev.type = "button";
      prev.className = "button-secondary pp-page-prev";
      prev.textContent = "Previous";
      prev.setAttribute("data-pp-prev", "");
      next = document.createElement("button");
      next.type = "button";
      next.className = "button-secondary pp-page-next";
      next.textContent = "Next";
      next.setAttribute("data-pp-next", "");
      var label = document.createElement("span");
      label.className = "pp-page-label";
      label.setAttribute("data-pp-page", "");
      pager.appendChild(prev);
      pager.appendChild(label);
      pager.appendChild(next);
      prev.addEventListener("click", function () { state.page -= 1; show(""); });
      next.addEventListener("click", function () { state.page += 1; show(""); });
      wrap.parentNode.insertBefore(pager, wrap.nextSibling);
    }
    wrap.parentNode.insertBefore(status, (pager || wrap).nextSibling);
    show("");
  }

  // --- tabs ------------------------------------------------------------------------------------

  function enhanceTabs(root) {
    if (root._ppTabs) { return; }
    root._ppTabs = true;
    var list = root.querySelector(".pp-tablist");
    if (!list) { return; }
    var tabs = Array.prototype.slice.call(list.querySelectorAll("[role=tab]"));
    var panels = tabs.map(function (tab) { return document.getElementById(tab.getAttribute("aria-controls")); });
    list.hidden = false;
    root.classList.add("pp-tabs-ready");

    function select(index, focus) {
      tabs.forEach(function (tab, k) {
        var on = k === index;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
        if (panels[k]) { panels[k].hidden = !on; }
      });
      if (focus) { tabs[index].focus(); }
    }

    tabs.forEach(function (tab, index) {
      if (panels[index]) { panels[index].tabIndex = 0; }
      tab.addEventListener("click", function () { select(index, true); });
      tab.addEventListener("keydown", function (event) {
        var to = null;
        if (event.key === "ArrowRight" || event.key === "ArrowDown") { to = (index + 1) % tabs.length; }
        if (event.key === "ArrowLeft" || event.key === "ArrowUp") { to = (index - 1 + tabs.length) % tabs.length; }
        if (event.key === "Home") { to = 0; }
        if (event.key === "End") { to = tabs.length - 1; }
        if (to === null) { return; }
        event.preventDefault();
        select(to, true);
      });
    });
    var chosen = tabs.findIndex(function (tab) { return tab.getAttribute("aria-selected") === "true"; });
    select(chosen < 0 ? 0 : chosen, false);
  }

  // --- one entry point for new markup ----------------------------------------------------------

  function enhance(root) {
    root = root || document;
    root.querySelectorAll("table[data-pp-table]").forEach(enhanceTable);
    root.querySelectorAll("[data-pp-tabs]").forEach(enhanceTabs);
  }

  // --- mount: a surface kept fresh -------------------------------------------------------------

  // mount(element, {src, refreshSeconds, versionsUrl, immediate}): element's content is the
  // "html" of GET src (asked with the partial header), fetched again every refreshSeconds (when
  // versionsUrl is given, only when its answer changed since the last look) and on demand:
  // handle.refresh() or a "pp:refresh" event on the element. handle.stop() ends the interval.
  function mount(element, options) {
    options = options || {};
    var src = options.src || element.getAttribute("data-pp-src");
    var seconds = Number(options.refreshSeconds || 0);
    var versionsUrl = options.versionsUrl || null;
    var seen = null;
    var pending = null;
    var timer = null;
    if (!element.hasAttribute("data-pp-surface")) { element.setAttribute("data-pp-surface", ""); }

    function refresh() {
      if (pending) { return pending; }
      element.setAttribute("aria-busy", "true");
      pending = fetch(src, { headers: PARTIAL, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          if (answer && answer.ok !== false && typeof answer.html === "string") {
            swap(element, answer.html);
          }
          return answer;
        })
        .catch(function () { return null; })  // kept as it was; the next look tries again
        .then(function (answer) {
          pending = null;
          element.removeAttribute("aria-busy");
          return answer;
        });
      return pending;
    }

    function look() {
      if (document.hidden) { return; }
      if (!versionsUrl) { refresh(); return; }
      fetch(versionsUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (text) {
          if (seen !== null && text !== seen) { refresh(); }
          seen = text;
        })
        .catch(function () {});
    }

    if (seconds > 0) { timer = window.setInterval(look, Math.max(1, seconds) * 1000); }
    element.addEventListener("pp:refresh", function () { refresh(); });
    var handle = {
      element: element,
      refresh: refresh,
      stop: function () { if (timer !== null) { window.clearInterval(timer); timer = null; } }
    };
    element._ppMount = handle;
    if (versionsUrl) { look(); }
    if (options.immediate) { refresh(); }
    return handle;
  }

  window.PlugportUI = {
    mount: mount,
    enhance: enhance,
    showOverlay: showOverlay,
    closeOverlay: closeOverlay
  };

  function start() {
    enhance(document);
    document.querySelectorAll("[data-pp-overlay]").forEach(function (overlay) {
      openOverlay(overlay, {});  // drawn by the server (a page without the script's help)
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
