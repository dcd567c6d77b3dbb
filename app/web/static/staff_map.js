// Staff live map: route lines of the active feed (fetched once) and the vehicles of the latest GTFS-rt
// snapshot (fetched every data-every seconds), projected onto the SVG without map tiles. The svg's
// data-state is live | stale | none | unavailable, and the status line says so in words.
(function () {
  "use strict";
  var svg = document.getElementById("map");
  var status = document.getElementById("map-status");
  if (!svg) { return; }
  var NS = "http://www.w3.org/2000/svg";
  var W = 900, H = 520, PAD = 20;
  var every = Math.max(1, parseInt(svg.getAttribute("data-every"), 10) || 10) * 1000;
  var routes = [], colors = {}, project = null;  // project: (lat, lon) -> [x, y]
  var PALETTE = ["#00838f", "#e4572e", "#6a4c93", "#f0a020", "#2e7d32", "#455a64", "#c2185b", "#1565c0"];
  var WORDS = {
    live: "Live",
    stale: "No live data: the last vehicle positions are too old — is the worker running?",
    none: "No live data: no vehicle positions have been published.",
    unavailable: "No live data: the real-time store cannot be reached."
  };

  function node(name, attrs, text) {
    var el = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text !== undefined) { el.textContent = text; }
    return el;
  }

  // Equirectangular projection fitted to the points, longitudes shrunk by cos(latitude).
  function fit(points) {
    if (!points.length) { return null; }
    var lats = points.map(function (p) { return p[0]; }), lons = points.map(function (p) { return p[1]; });
    var minLat = Math.min.apply(null, lats), maxLat = Math.max.apply(null, lats);
    var minLon = Math.min.apply(null, lons), maxLon = Math.max.apply(null, lons);
    var k = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);
    var spanX = Math.max((maxLon - minLon) * k, 1e-4), spanY = Math.max(maxLat - minLat, 1e-4);
    var scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY);
    var offX = (W - spanX * scale) / 2, offY = (H - spanY * scale) / 2;
    return function (lat, lon) { return [offX + (lon - minLon) * k * scale, H - offY - (lat - minLat) * scale]; };
  }

  function drawRoutes(layer) {
    routes.forEach(function (route, i) {
      colors[route.route_id] = route.color || PALETTE[i % PALETTE.length];
      route.shapes.forEach(function (shape) {
        var pts = shape.map(function (p) { return project(p[0], p[1]).join(","); }).join(" ");
        var line = node("polyline", { points: pts, fill: "none", stroke: colors[route.route_id], "stroke-width": 2,
          "stroke-opacity": 0.55, "class": "route-line", "data-route": route.route_id });
        line.appendChild(node("title", {}, "Route " + route.name));
        layer.appendChild(line);
      });
    });
  }

  function drawVehicles(layer, vehicles) {
    vehicles.forEach(function (v) {
      var xy = project(v.lat, v.lon);
      var g = node("g", { "class": "vehicle", "data-vehicle": v.id, transform: "translate(" + xy[0] + "," + xy[1] + ")" });
      g.appendChild(node("circle", { r: 6, fill: colors[v.route_id] || "#17202c", stroke: "#fff", "stroke-width": 2 }));
      g.appendChild(node("title", {}, "Vehicle " + v.id + (v.route_id ? ", route " + v.route_id : "") +
        (v.trip_id ? ", trip " + v.trip_id : "")));
      layer.appendChild(g);
    });
  }

  function render(live) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var vehicles = live.status === "live" || live.status === "stale" ? live.vehicles : [];
    var points = [];
    routes.forEach(function (r) { r.shapes.forEach(function (s) { points = points.concat(s); }); });
    vehicles.forEach(function (v) { points.push([v.lat, v.lon]); });
    project = fit(points);  // refitted each time, so a vehicle off every route line is still on the map
    if (project) {
      var routeLayer = node("g", {}), vehicleLayer = node("g", {});
      drawRoutes(routeLayer);
      drawVehicles(vehicleLayer, live.status === "live" ? vehicles : []);
      svg.appendChild(routeLayer);
      svg.appendChild(vehicleLayer);
    }
    svg.setAttribute("data-state", live.status);
    svg.setAttribute("data-vehicles", live.status === "live" ? vehicles.length : 0);
    if (live.status !== "live") {
      svg.appendChild(node("rect", { x: W / 2 - 230, y: H / 2 - 24, width: 460, height: 40, rx: 6, "class": "no-data" }));
      svg.appendChild(node("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "class": "no-data-text" },
        "No live data"));
    }
    var when = live.age_s === null ? "" : " (positions " + live.age_s + " s old)";
    status.textContent = live.status === "live" ? vehicles.length + " vehicles live" + when + ", " + routes.length +
      " routes" : WORDS[live.status] || live.status;
  }

  function refresh() {
    fetch("/staff/live/vehicles.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (res) { return res.ok ? res.json() : { status: "unavailable", vehicles: [], age_s: null }; })
      .catch(function () { return { status: "unavailable", vehicles: [], age_s: null }; })
      .then(render)
      .then(function () { window.setTimeout(refresh, every); });
  }

  fetch("/staff/live/routes.json", { credentials: "same-origin" })
    .then(function (res) { return res.ok ? res.json() : { routes: [] }; })
    .catch(function () { return { routes: [] }; })
    .then(function (body) { routes = body.routes; refresh(); });
})();
