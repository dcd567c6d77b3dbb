// Staff dashboard: reads the filters, fetches the report as JSON (session cookie), draws an SVG chart — bars of
// the report's main measure by its first column, or for prediction accuracy one line per predictor of the ETA
// benchmark by day — fills the table and points the CSV link at the same query.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var svg = document.getElementById("chart");
  var NS = "http://www.w3.org/2000/svg";

  // Inputs marked data-only="<report>" (the OD matrix's top-flows limit) are sent to that report only, and
  // shown only while it is selected: every other report refuses a parameter it cannot honour.
  function query() {
    var name = document.getElementById("report").value;
    var params = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.dataset.only && el.dataset.only !== name) { return; }
      if (el.name && el.name !== "report" && el.value) { params.set(el.name, el.value); }
    });
    Array.prototype.forEach.call(form.querySelectorAll("label[data-only]"), function (label) {
      label.style.display = label.dataset.only === name ? "" : "none";
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
    var preferred = ["boardings", "trips", "amount", "on_time_share", "eta_benchmark"].filter(function (c) { return numeric.indexOf(c) >= 0; });
    return preferred[0] || numeric[numeric.length - 1];
  }

  function labelOf(columns, row) {
    if (columns[0] === "route_id" && columns[1] === "hour") { return row.route_id + " " + row.hour + "h"; }
    if (columns[1] === "predictor") { return row[columns[0]] + " " + row.predictor; }
    if (columns[0] === "origin") { return row.origin + "→" + (row.destination || "unchained"); }
    return String(row[columns[0]] === null ? "(none)" : row[columns[0]]);
  }

  var PALETTE = ["#00838f", "#e4572e", "#6a4c93", "#f0a020", "#2e7d32", "#455a64"];

  function percent(v) { return Math.round(v * 100) + "%"; }

  // One line per predictor of the ETA benchmark (0–100 %) over the service dates.
  function drawLines(columns, rows) {
    var series = {}, dates = [];
    rows.forEach(function (r) {
      if (r.eta_benchmark === null) { return; }
      (series[r.predictor] = series[r.predictor] || []).push(r);
      if (dates.indexOf(r.service_date) < 0) { dates.push(r.service_date); }
    });
    dates.sort();
    var names = Object.keys(series).sort();
    if (!names.length) {
      svg.appendChild(node("text", { x: 20, y: 40, "class": "empty" }, "No scored predictions for these filters"));
      return;
    }
    svg.setAttribute("data-measure", "eta_benchmark");
    svg.setAttribute("data-kind", "line");
    var left = 50, width = 820, top = 30, height = 240;
    function x(date) { return left + (dates.length < 2 ? width / 2 : width * dates.indexOf(date) / (dates.length - 1)); }
    function y(v) { return top + height * (1 - v); }
    [0, 0.25, 0.5, 0.75, 1].forEach(function (v) {
      svg.appendChild(node("line", { x1: left, x2: left + width, y1: y(v), y2: y(v), "class": "grid" }));
      svg.appendChild(node("text", { x: left - 6, y: y(v) + 4, "class": "axis", "text-anchor": "end" }, percent(v)));
    });
    svg.appendChild(node("text", { x: left, y: 16, "class": "axis" },
      "ETA accuracy benchmark by day (mean of the [0,3) [3,6) [6,10) [10,15) min buckets)"));
    var step = Math.max(1, Math.ceil(dates.length / 10));
    dates.forEach(function (d, i) {
      if (i % step === 0) {
        svg.appendChild(node("text", { x: x(d), y: top + height + 18, "class": "label", "text-anchor": "middle" },
          d.slice(5)));
      }
    });
    names.forEach(function (name, k) {
      var color = PALETTE[k % PALETTE.length];
      var points = series[name].map(function (r) { return x(r.service_date) + "," + y(r.eta_benchmark); });
      svg.appendChild(node("polyline", { points: points.join(" "), fill: "none", stroke: color, "stroke-width": 2.5,
        "class": "series", "data-series": name }));
      series[name].forEach(function (r) {
        var dot = node("circle", { cx: x(r.service_date), cy: y(r.eta_benchmark), r: 3.5, fill: color });
        dot.appendChild(node("title", {}, name + " " + r.service_date + ": " + percent(r.eta_benchmark) +
          " of " + r.predictions));
        svg.appendChild(dot);
      });
      svg.appendChild(node("rect", { x: left + 10 + k * 150, y: top + height + 30, width: 12, height: 12, fill: color }));
      svg.appendChild(node("text", { x: left + 28 + k * 150, y: top + height + 40, "class": "label" }, name));
    });
  }

  function draw(columns, rows) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    svg.removeAttribute("data-kind");
    if (columns[0] === "service_date" && columns.indexOf("eta_benchmark") >= 0) {
      drawLines(columns, rows);
      return;
    }
    var measure = measureOf(columns, rows);
    var shown = rows.slice(0, 40);
    if (!measure || !shown.length) {
      svg.appendChild(node("text", { x: 20, y: 40, "class": "empty" }, "No data for these filters"));
      return;
    }
    var max = Math.max.apply(null, shown.map(function (r) { return r[measure] || 0; })) || 1;
    var w = 860 / shown.length;
    svg.setAttribute("data-measure", measure);
    svg.setAttribute("data-kind", "bar");
    svg.appendChild(node("text", { x: 20, y: 16, "class": "axis" }, measure + " (max " + max + ")"));
    shown.forEach(function (row, i) {
      var h = Math.round(250 * (row[measure] || 0) / max);
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
