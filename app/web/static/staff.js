// Staff dashboard: reads the filters, fetches the report as JSON (session cookie), draws an SVG bar chart
// of the report's first measure by its first column, fills the table and points the CSV link at the same query.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var svg = document.getElementById("chart");
  var NS = "http://www.w3.org/2000/svg";

  function query() {
    var params = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && el.name !== "report" && el.value) { params.set(el.name, el.value); }
    });
    return params;
  }

  function node(name, attrs, text) {
    var el = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text !== undefined) { el.textContent = text; }
    return el;
  }

  function measureOf(columns, rows) {
    var numeric = columns.filter(function (c) { return rows.length && typeof rows[0][c] === "number"; });
    var preferred = ["boardings", "trips", "amount", "on_time"].filter(function (c) { return numeric.indexOf(c) >= 0; });
    return preferred[0] || numeric[numeric.length - 1];
  }

  function labelOf(columns, row) {
    if (columns[0] === "route_id" && columns[1] === "hour") { return row.route_id + " " + row.hour + "h"; }
    if (columns[0] === "origin") { return row.origin + "→" + (row.destination || "?"); }
    return String(row[columns[0]] === null ? "(none)" : row[columns[0]]);
  }

  function draw(columns, rows) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var measure = measureOf(columns, rows);
    var shown = rows.slice(0, 40);
    if (!measure || !shown.length) {
      svg.appendChild(node("text", { x: 20, y: 40, "class": "empty" }, "No data for these filters"));
      return;
    }
    var max = Math.max.apply(null, shown.map(function (r) { return r[measure]; })) || 1;
    var w = 860 / shown.length;
    svg.setAttribute("data-measure", measure);
    svg.appendChild(node("text", { x: 20, y: 16, "class": "axis" }, measure + " (max " + max + ")"));
    shown.forEach(function (row, i) {
      var h = Math.round(250 * row[measure] / max);
      var bar = node("rect", { x: 30 + i * w, y: 280 - h, width: Math.max(1, w - 3), height: h, "class": "bar" });
      bar.appendChild(node("title", {}, labelOf(columns, row) + ": " + row[measure]));
      svg.appendChild(bar);
      if (shown.length <= 24) {
        svg.appendChild(node("text", { x: 30 + i * w + w / 2, y: 298, "class": "label", "text-anchor": "middle" },
          labelOf(columns, row).slice(0, 10)));
      }
    });
  }

  function table(columns, rows) {
    var head = document.querySelector("#table thead");
    var body = document.querySelector("#table tbody");
    head.innerHTML = "";
    body.innerHTML = "";
    var tr = document.createElement("tr");
    columns.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; tr.appendChild(th); });
    head.appendChild(tr);
    rows.forEach(function (row) {
      var r = document.createElement("tr");
      columns.forEach(function (c) {
        var td = document.createElement("td");
        td.textContent = row[c] === null ? "" : String(row[c]);
        r.appendChild(td);
      });
      body.appendChild(r);
    });
  }

  function load() {
    var name = document.getElementById("report").value;
    var params = query();
    var url = "/api/v1/reports/" + encodeURIComponent(name) + "?" + params.toString();
    params.set("format", "csv");
    document.getElementById("csv").href = "/api/v1/reports/" + encodeURIComponent(name) + "?" + params.toString();
    var status = document.getElementById("status");
    status.textContent = "Loading…";
    fetch(url, { credentials: "same-origin" }).then(function (res) {
      return res.json().then(function (body) { return { ok: res.ok, body: body }; });
    }).then(function (result) {
      if (!result.ok) {
        status.textContent = result.body.error ? result.body.error.message : "error";
        draw([], []);
        table([], []);
        return;
      }
      status.textContent = result.body.rows.length + " rows";
      draw(result.body.columns, result.body.rows);
      table(result.body.columns, result.body.rows);
    });
  }

  form.addEventListener("change", load);
  form.addEventListener("submit", function (e) { e.preventDefault(); load(); });
  load();
})();
