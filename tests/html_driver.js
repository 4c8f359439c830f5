// Injected before </body> of a copy of an HTML report (tests/test_html_report.py): uses the page as a
// reader would (sorts, filters, clicks a graph node), measures its layout, and writes what it found
// as JSON into <pre id="ukds-results">, which chromium --dump-dom returns.
(function () {
  "use strict";
  // Checks the report the way a reader uses it; writes what it found into <pre id="ukds-results">.
  var R = { errors: window.__ukdsErrors || [], tables: [], problems: [] };
  function fail(msg) { R.problems.push(msg); }
  function visibleRows(t) { return Array.prototype.filter.call(t.tBodies[0].rows, function (r) { return r.style.display !== "none"; }); }
  function column(t, i) { return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.children[i] ? r.children[i].textContent.trim() : ""; }); }
  function ordered(values, asc) {
    var numeric = values.every(function (v) { return v !== "" && isFinite(v); });
    for (var k = 1; k < values.length; k++) {
      var c = numeric ? parseFloat(values[k - 1]) - parseFloat(values[k]) : values[k - 1].localeCompare(values[k]);
      if (asc ? c > 0 : c < 0) return false;
    }
    return true;
  }
  function run() {
    var doc = document.documentElement;
    R.viewport = [window.innerWidth, window.innerHeight];
    R.page = [doc.scrollWidth, doc.clientWidth];
    if (doc.scrollWidth > doc.clientWidth) fail("page scrolls sideways: " + doc.scrollWidth + " > " + doc.clientWidth);
    var list = document.querySelector("ol.checklist");
    if (!list) fail("no checklist");
    else {
      var b = list.getBoundingClientRect();
      R.checklist = [b.left, b.top, b.right, b.bottom];
      if (b.top < 0 || b.bottom > window.innerHeight || b.right > window.innerWidth) fail("checklist outside the first screen: " + JSON.stringify(R.checklist));
    }
    var tables = document.querySelectorAll("table");
    Array.prototype.forEach.call(tables, function (t) {
      var row = { id: t.id, rows: t.tBodies[0].rows.length, width: [t.scrollWidth, t.clientWidth, t.parentElement.scrollWidth, t.parentElement.clientWidth] };
      R.tables.push(row);
      if (t.scrollWidth > t.clientWidth || t.parentElement.scrollWidth > t.parentElement.clientWidth) fail(t.id + " wider than its box: " + row.width);
      if (!t.classList.contains("sortable") || !t.id) { fail("table not sortable: " + t.id); return; }
      var n = t.tBodies[0].rows.length;
      if (n === 0) return;
      // sort: every column whose values differ, ascending then descending
      var ths = t.tHead.rows[0].cells, sorted = 0;
      for (var i = 0; i < ths.length; i++) {
        if (getComputedStyle(ths[i]).display === "none") continue;
        ths[i].click();
        var up = column(t, i);
        ths[i].click();
        var down = column(t, i);
        if (new Set(up).size < 2) continue;
        sorted++;
        if (!ordered(up, true) || !ordered(down, false)) fail(t.id + ": column " + i + " not sorted");
      }
      row.sortedColumns = sorted;
      if (n > 1 && sorted === 0) fail(t.id + ": no column could be sorted");
      // filter: the text box, with a word from the last row
      var box = document.querySelector('input[data-filter-for="' + t.id + '"]');
      if (!box) { fail(t.id + ": no filter"); return; }
      var probe = t.tBodies[0].rows[n - 1].children[1] || t.tBodies[0].rows[n - 1].children[0];
      var word = probe.textContent.trim().split(/\s+/)[0];
      box.value = word; box.dispatchEvent(new Event("input"));
      var shown = visibleRows(t);
      row.filtered = [word, shown.length];
      if (shown.length === 0 || shown.some(function (r) { return r.textContent.toLowerCase().indexOf(word.toLowerCase()) < 0; })) fail(t.id + ": text filter wrong for " + word);
      box.value = ""; box.dispatchEvent(new Event("input"));
      if (visibleRows(t).length !== n) fail(t.id + ": clearing the filter does not bring every row back");
      // the gap table's selects: each value shows exactly the rows carrying it
      Array.prototype.forEach.call(document.querySelectorAll('select[data-filter-for="' + t.id + '"]'), function (sel) {
        var key = sel.dataset.key;
        Array.prototype.forEach.call(sel.options, function (o) {
          if (!o.value) return;
          sel.value = o.value; sel.dispatchEvent(new Event("change"));
          var expect = Array.prototype.filter.call(t.tBodies[0].rows, function (r) {
            return key === "via" ? r.dataset.via.split("\n").indexOf(o.value) >= 0 : r.dataset[key] === o.value;
          });
          var got = visibleRows(t);
          if (got.length === 0 || got.length !== expect.length || got.some(function (r) { return expect.indexOf(r) < 0; })) fail(t.id + ": filter " + key + "=" + o.value + " shows " + got.length + " rows, expected " + expect.length);
        });
        sel.value = ""; sel.dispatchEvent(new Event("change"));
        row.selects = (row.selects || 0) + 1;
      });
    });
    // the graph: inline SVG, at most 60 nodes, drawn within 1400 x 1000; a node expands its list
    var graphs = document.querySelectorAll("svg.overview");
    R.graphs = Array.prototype.map.call(graphs, function (g) {
      var vb = g.viewBox.baseVal, nodes = g.querySelectorAll("a.node"), r = g.getBoundingClientRect();
      if (nodes.length === 0 || nodes.length > 60) fail("graph has " + nodes.length + " nodes");
      if (vb.width > 1400 || vb.height > 1000 || r.width > 1400 || r.height > 1000) fail("graph larger than 1400x1000");
      var first = nodes[nodes.length - 1];
      first.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true }));
      var d = document.getElementById(first.getAttribute("href").slice(1));
      if (!d || !d.open) fail("clicking a graph node does not open its list");
      return { nodes: nodes.length, edges: g.querySelectorAll("path.edge").length, box: [r.width, r.height] };
    });
    R.charts = document.querySelectorAll("svg.chart").length;
    R.images = document.images.length;
    R.resources = performance.getEntriesByType("resource").map(function (e) { return e.name; });
    var out = document.createElement("pre");
    out.id = "ukds-results";
    out.textContent = JSON.stringify(R);
    document.body.appendChild(out);
  }
  window.addEventListener("load", function () { setTimeout(run, 0); });
})();
