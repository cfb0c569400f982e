// As-you-type search: the form still works without this. On input, wait a moment, fetch the
// results fragment for the form's current values, swap it in and put the query in the URL.
(function () {
  "use strict";
  var form = document.getElementById("search-form");
  var results = document.getElementById("results");
  if (!form || !results || !window.fetch || !window.URLSearchParams) {
    return;
  }
  // Wide screens have room for the filters beside the results: show them (closed on phones,
  // where they would push the results below the fold).
  var filters = document.getElementById("filters");
  if (filters && window.matchMedia && window.matchMedia("(min-width: 860px)").matches) {
    filters.open = true;
  }
  var DELAY_MS = 250;
  var timer = null;
  var inflight = null;
  var lastQuery = null;

  function queryString() {
    var params = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || !el.value || el.disabled) {
        return;
      }
      params.append(el.name, el.value);
    });
    // A new query starts at page 1: the page number belongs to the old result list.
    params.delete("page");
    return params.toString();
  }

  function refresh() {
    var qs = queryString();
    if (qs === lastQuery) {
      return;
    }
    lastQuery = qs;
    if (inflight) {
      inflight.abort();
    }
    inflight = window.AbortController ? new AbortController() : null;
    results.setAttribute("aria-busy", "true");
    var url = (form.getAttribute("action") || "/search") + (qs ? "?" + qs : "");
    fetch(url, {
      headers: { "X-Plugport-Partial": "results" },
      credentials: "same-origin",
      signal: inflight ? inflight.signal : undefined,
    })
      .then(function (response) {
        return response.text();
      })
      .then(function (html) {
        results.innerHTML = html;
        // An error shown above the form by the page load is now out of date.
        var stale = document.getElementById("search-error");
        if (stale && !results.contains(stale)) {
          stale.parentNode.removeChild(stale);
        }
        results.setAttribute("aria-busy", "false");
        if (window.history && window.history.replaceState) {
          window.history.replaceState(null, "", url);
        }
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") {
          return;
        }
        results.setAttribute("aria-busy", "false");
      });
  }

  function schedule() {
    if (timer) {
      window.clearTimeout(timer);
    }
    timer = window.setTimeout(refresh, DELAY_MS);
  }

  lastQuery = queryString();
  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);
})();
