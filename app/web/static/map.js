// The rider pages' maps. A street map (Leaflet, served by us from its npm package, over tiles from the configured
// URL) when its tiles load; otherwise — no tile URL, tiles failing, offline, no Leaflet — our own SVG map of route
// shapes and stops (no tiles, no CDN; drag / pinch / wheel zoom), with a note saying so. `open` gives both one face.
"use strict";
window.QalaMap = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const UNITS_PER_DEGREE = 1000;
  const TAP_SLOP_PX = 8;
  const PICK_RADIUS_PX = 22;

  function svgEl(tag, attrs) {
    const node = document.createElementNS(NS, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    return node;
  }

  class QalaMap {
    constructor(svg, data, options) {
      this.svg = svg;
      this.options = options || {};
      this.stops = data.stops || [];
      const points = [];
      (data.routes || []).forEach((r) => r.lines.forEach((line) => line.forEach((p) => points.push(p))));
      this.stops.forEach((s) => points.push([s.lon, s.lat]));
      const lats = points.map((p) => p[1]);
      const lons = points.map((p) => p[0]);
      this.lat0 = points.length ? (Math.min(...lats) + Math.max(...lats)) / 2 : 43.24;
      this.lon0 = points.length ? (Math.min(...lons) + Math.max(...lons)) / 2 : 76.94;
      this.kx = Math.cos(this.lat0 * Math.PI / 180) * UNITS_PER_DEGREE;
      this.layers = {};
      ["routes", "stops", "vehicles", "me"].forEach((name) => {
        this.layers[name] = svgEl("g", { class: "layer-" + name });
        svg.append(this.layers[name]);
      });
      this.drawRoutes(data.routes || []);
      this.drawStops();
      this.fit(points);
      this.listen();
    }

    project(lon, lat) { return [(lon - this.lon0) * this.kx, -(lat - this.lat0) * UNITS_PER_DEGREE]; }

    drawRoutes(routes) {
      routes.forEach((route) => route.lines.forEach((line) => {
        const d = line.map((p, i) => (i ? "L" : "M") + this.project(p[0], p[1]).map((v) => v.toFixed(2)).join(" "))
          .join("");
        const path = svgEl("path", { d, stroke: "#" + route.color, class: "shape" });
        path.append(Object.assign(svgEl("title"), { textContent: route.short_name + " " + (route.name || "") }));
        this.layers.routes.append(path);
      }));
    }

    drawStops() {
      this.stops.forEach((stop) => {
        const [x, y] = this.project(stop.lon, stop.lat);
        stop._xy = [x, y];
        const dot = svgEl("circle", { cx: x.toFixed(2), cy: y.toFixed(2), r: 1, class: "stop" });
        dot.dataset.stopId = stop.stop_id;
        stop._dot = dot;
        this.layers.stops.append(dot);
      });
    }

    setVehicles(vehicles, route) {
      this.layers.vehicles.replaceChildren();
      (vehicles || []).forEach((v) => {
        const [x, y] = this.project(v.lon, v.lat);
        const mine = v.route || route;
        // the route number on the bus, in the badge's legible colours (rider.js routeBadge)
        const badge = window.Qala.routeBadge((mine && mine.short_name) || "", mine && mine.color, null, null,
                                             mine && mine.text_color);
        const mark = svgEl("circle", { cx: x, cy: y, r: 1, class: "vehicle", fill: badge.style.background });
        mark.append(Object.assign(svgEl("title"), { textContent: busLabel(v, mine) }));
        const label = svgEl("text", { x, y, class: "vehicle-label", fill: badge.style.color, "text-anchor": "middle",
                                      "dominant-baseline": "central", "aria-hidden": "true" });
        label.textContent = badge.textContent;
        this.layers.vehicles.append(mark, label);
      });
      this.restyle();
    }

    setMe(lat, lon) {
      this.layers.me.replaceChildren();
      const [x, y] = this.project(lon, lat);
      this.layers.me.append(svgEl("circle", { cx: x, cy: y, r: 1, class: "me" }));
      this.centerOn(x, y, 2500);
    }

    highlight(stopIds) {
      const chosen = new Set(stopIds);
      this.stops.forEach((s) => s._dot.classList.toggle("chosen", chosen.has(s.stop_id)));
      this.restyle();
    }

    fit(points) {
      if (!points.length) { this.view = { x: -50, y: -50, w: 100, h: 100 }; this.apply(); return; }
      const xy = points.map((p) => this.project(p[0], p[1]));
      const xs = xy.map((p) => p[0]);
      const ys = xy.map((p) => p[1]);
      // a margin of a tenth of the extent keeps line ends clear of the zoom buttons
      const pad = Math.max(0.5, 0.1 * Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)));
      const x = Math.min(...xs) - pad;
      const y = Math.min(...ys) - pad;
      this.view = { x, y, w: Math.max(...xs) - x + pad, h: Math.max(...ys) - y + pad };
      this.home = Object.assign({}, this.view);
      this.apply();
    }

    centerOn(x, y, metresAcross) {
      const w = metresAcross / 111320 * UNITS_PER_DEGREE;
      const aspect = this.view.h / this.view.w;
      this.view = { x: x - w / 2, y: y - w * aspect / 2, w, h: w * aspect };
      this.apply();
    }

    pixelsPerUnit() {
      const box = this.svg.getBoundingClientRect();
      return box.width > 0 ? Math.min(box.width / this.view.w, box.height / this.view.h) : 1;
    }

    apply() {
      const v = this.view;
      this.svg.setAttribute("viewBox", [v.x, v.y, v.w, v.h].map((n) => n.toFixed(3)).join(" "));
      this.restyle();
    }

    // dots keep their size on screen whatever the zoom
    restyle() {
      const unit = 1 / this.pixelsPerUnit();
      // small dots over the whole city, bigger (easier to tap) as the rider zooms in
      const zoomed = this.home ? Math.sqrt(Math.max(this.home.w / this.view.w, 1)) : 1;
      const dot = Math.min(6, 2.5 * zoomed);
      this.layers.stops.querySelectorAll("circle").forEach((c) => c.setAttribute("r", (c.classList.contains("chosen") ? dot + 2 : dot) * unit));
      this.layers.vehicles.querySelectorAll("circle").forEach((c) => {
        c.setAttribute("r", 12 * unit); c.setAttribute("stroke-width", 3 * unit);
      });
      this.layers.vehicles.querySelectorAll("text").forEach((t) => t.setAttribute("font-size", 11 * unit));
      this.layers.me.querySelectorAll("circle").forEach((c) => {
        c.setAttribute("r", 8 * unit); c.setAttribute("stroke-width", 3 * unit);
      });
      this.layers.stops.querySelectorAll("circle").forEach((c) => c.setAttribute("stroke-width", 1.2 * unit));
    }

    toUnits(clientX, clientY) {
      const box = this.svg.getBoundingClientRect();
      const scale = this.pixelsPerUnit();
      // preserveAspectRatio xMidYMid meet: the view is centred in the box
      const offsetX = (box.width - this.view.w * scale) / 2;
      const offsetY = (box.height - this.view.h * scale) / 2;
      return [this.view.x + (clientX - box.left - offsetX) / scale, this.view.y + (clientY - box.top - offsetY) / scale];
    }

    zoom(factor, clientX, clientY) {
      const box = this.svg.getBoundingClientRect();
      const [cx, cy] = clientX === undefined ? [this.view.x + this.view.w / 2, this.view.y + this.view.h / 2]
        : this.toUnits(clientX, clientY);
      const w = Math.min(Math.max(this.view.w / factor, 0.2), this.home ? this.home.w * 4 : 1e6);
      const ratio = w / this.view.w;
      this.view = { x: cx - (cx - this.view.x) * ratio, y: cy - (cy - this.view.y) * ratio, w, h: this.view.h * ratio };
      this.apply();
      return box;
    }

    nearestStop(clientX, clientY) {
      const [x, y] = this.toUnits(clientX, clientY);
      const limit = PICK_RADIUS_PX / this.pixelsPerUnit();
      let best = null;
      let bestD = limit * limit;
      this.stops.forEach((s) => {
        const d = (s._xy[0] - x) ** 2 + (s._xy[1] - y) ** 2;
        if (d <= bestD) { best = s; bestD = d; }
      });
      return best;
    }

    listen() {
      const pointers = new Map();
      let moved = 0;
      let pinch = null;
      this.svg.addEventListener("pointerdown", (e) => {
        this.svg.setPointerCapture(e.pointerId);
        pointers.set(e.pointerId, [e.clientX, e.clientY]);
        moved = 0;
        pinch = null;
      });
      this.svg.addEventListener("pointermove", (e) => {
        if (!pointers.has(e.pointerId)) return;
        const [px, py] = pointers.get(e.pointerId);
        if (pointers.size === 1) {
          const scale = this.pixelsPerUnit();
          this.view.x -= (e.clientX - px) / scale;
          this.view.y -= (e.clientY - py) / scale;
          moved += Math.abs(e.clientX - px) + Math.abs(e.clientY - py);
          pointers.set(e.pointerId, [e.clientX, e.clientY]);
          this.apply();
          return;
        }
        pointers.set(e.pointerId, [e.clientX, e.clientY]);
        const [a, b] = [...pointers.values()];
        const span = Math.hypot(a[0] - b[0], a[1] - b[1]);
        if (pinch) this.zoom(span / pinch, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2);
        pinch = span;
        moved += TAP_SLOP_PX;
      });
      const release = (e) => {
        if (!pointers.has(e.pointerId)) return;
        pointers.delete(e.pointerId);
        if (pointers.size < 2) pinch = null;
        if (e.type === "pointerup" && moved < TAP_SLOP_PX && this.options.onStop) {
          const stop = this.nearestStop(e.clientX, e.clientY);
          if (stop) this.options.onStop(stop);
        }
      };
      this.svg.addEventListener("pointerup", release);
      this.svg.addEventListener("pointercancel", release);
      this.svg.addEventListener("wheel", (e) => {
        e.preventDefault();
        this.zoom(e.deltaY < 0 ? 1.25 : 0.8, e.clientX, e.clientY);
      }, { passive: false });
      // keyboard: arrows move, + and - zoom (the search list is the map's text alternative)
      this.svg.setAttribute("tabindex", "0");
      this.svg.addEventListener("keydown", (e) => {
        const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
        if (moves[e.key]) {
          this.view.x += moves[e.key][0] * this.view.w * 0.15;
          this.view.y += moves[e.key][1] * this.view.h * 0.15;
          this.apply();
        } else if (e.key === "+" || e.key === "=") {
          this.zoom(1.5);
        } else if (e.key === "-") {
          this.zoom(1 / 1.5);
        } else {
          return;
        }
        e.preventDefault();
      });
      const wrap = this.svg.parentElement;
      wrap.querySelectorAll("[data-zoom]").forEach((button) => button.addEventListener("click", () => {
        this.zoom(button.dataset.zoom === "in" ? 1.5 : 1 / 1.5);
      }));
      window.addEventListener("resize", () => this.restyle());
    }
  }

  // a popup naming the stop with a link to its page, inside the map's wrapper
  function stopPopup(popup, stop) {
    const link = Object.assign(document.createElement("a"), { href: "/stops/" + encodeURIComponent(stop.stop_id),
                                                               textContent: window.Qala.t("open_stop") });
    popup.replaceChildren(Object.assign(document.createElement("strong"), { textContent: stop.name }), " ", link);
    popup.hidden = false;
  }

  // what a rider reads about a bus: "12 → Headsign · next: Stop · 3 min" (never its fleet number)
  function busLabel(v, route) {
    const Q = window.Qala;
    const parts = [((route && route.short_name) || "") + " → " + (v.headsign || "")];
    if (v.next_stop_name) parts.push(Q.t("next_stop", { stop: v.next_stop_name }));
    if (v.minutes !== null && v.minutes !== undefined) parts.push(v.minutes ? Q.t("minutes", { n: v.minutes }) : Q.t("now"));
    return parts.join(" · ");
  }

  // ---- the street map ----
  const TILE_WAIT_MS = 8000; // no tile by then: the tile server is out of reach
  let leaflet = null;

  // Leaflet's script and stylesheet, loaded once and only when a page has a street map to draw (the page itself
  // stays light: its first paint never waits for them)
  function loadLeaflet(wrap) {
    if (window.L) return Promise.resolve(window.L);
    if (!leaflet) {
      leaflet = new Promise((resolve, reject) => {
        document.head.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href: wrap.dataset.leafletCss }));
        const script = Object.assign(document.createElement("script"), { src: wrap.dataset.leafletJs });
        script.onload = () => (window.L ? resolve(window.L) : reject(new Error("no Leaflet")));
        script.onerror = () => reject(new Error("no Leaflet"));
        document.head.append(script);
      });
    }
    return leaflet;
  }

  function badgeHtml(route) {
    const badge = window.Qala.routeBadge((route && route.short_name) || "", route && route.color, null, null,
                                         route && route.text_color);
    badge.classList.add("bus-badge");
    return badge.outerHTML;
  }

  class StreetMap {
    constructor(L, wrap, data, options) {
      this.L = L;
      this.wrap = wrap;
      this.options = options || {};
      this.loaded = 0;
      this.node = Object.assign(document.createElement("div"), { className: "street-map" });
      this.node.setAttribute("role", "region");
      this.node.setAttribute("aria-label", wrap.querySelector("svg").getAttribute("aria-label") || document.title);
      wrap.prepend(this.node);
      this.map = L.map(this.node, { zoomControl: false, keyboard: true, tap: true });
      this.map.attributionControl.setPrefix("Leaflet");
      const text = document.createElement("span");
      text.textContent = wrap.dataset.attribution || "";
      this.tiles = L.tileLayer(wrap.dataset.tiles, { attribution: text.innerHTML, maxZoom: 19 });
      this.routes = L.layerGroup().addTo(this.map);
      this.stops = L.layerGroup().addTo(this.map);
      this.vehicles = L.layerGroup().addTo(this.map);
      this.me = L.layerGroup().addTo(this.map);
      this.markers = new Map();
      this.draw(data);
      wrap.querySelectorAll("[data-zoom]").forEach((button) => button.addEventListener("click", () => {
        if (wrap.classList.contains("street")) this.map.setZoom(this.map.getZoom() + (button.dataset.zoom === "in" ? 1 : -1));
      }));
    }

    draw(data) {
      const L = this.L;
      const points = [];
      const weight = (data.routes || []).length > 1 ? 3 : 5;
      (data.routes || []).forEach((route) => route.lines.forEach((line) => {
        const latlngs = line.map((p) => [p[1], p[0]]);
        latlngs.forEach((p) => points.push(p));
        L.polyline(latlngs, { color: "#" + route.color, weight, opacity: 0.85, className: "street-shape" }).addTo(this.routes);
      }));
      (data.stops || []).forEach((stop) => {
        points.push([stop.lat, stop.lon]);
        const icon = L.divIcon({ className: "stop-pin", iconSize: [28, 28], html: "<span></span>" });
        const marker = L.marker([stop.lat, stop.lon], { icon, title: stop.name, keyboard: (data.stops || []).length <= 80 })
          .on("click", () => this.options.onStop && this.options.onStop(stop));
        marker.addTo(this.stops);
        this.markers.set(stop.stop_id, marker);
      });
      if (points.length) this.map.fitBounds(L.latLngBounds(points), { padding: [16, 16] });
      else this.map.setView([43.24, 76.94], 12);
    }

    // tiles decide: the first one loaded shows the street map, an error (or silence) before that gives it up
    start(onShow, onFail) {
      const timer = setTimeout(() => { if (!this.loaded) onFail(); }, TILE_WAIT_MS);
      this.tiles.on("tileload", () => {
        this.loaded += 1;
        if (this.loaded === 1) { clearTimeout(timer); onShow(); }
      });
      this.tiles.on("tileerror", () => { if (!this.loaded) { clearTimeout(timer); onFail(); } });
      window.addEventListener("offline", onFail);
      this.tiles.addTo(this.map);
    }

    remove() { this.map.remove(); this.node.remove(); }

    setVehicles(vehicles, route) {
      this.vehicles.clearLayers();
      (vehicles || []).forEach((v) => {
        const mine = v.route || route;
        const html = badgeHtml(mine) + '<span class="bus-heading" style="transform: rotate(' + (v.bearing || 0) + 'deg)">▲</span>';
        const icon = this.L.divIcon({ className: "bus-marker", iconSize: [56, 56], html });
        this.L.marker([v.lat, v.lon], { icon, title: busLabel(v, mine), keyboard: false, zIndexOffset: 1000 })
          .addTo(this.vehicles);
      });
    }

    highlight(stopIds) {
      const chosen = new Set(stopIds);
      this.markers.forEach((marker, id) => {
        const el = marker.getElement();
        if (el) el.classList.toggle("chosen", chosen.has(id));
      });
    }

    setMe(lat, lon) {
      this.me.clearLayers();
      this.L.circleMarker([lat, lon], { radius: 9, color: "#fff", weight: 3, fillColor: "#1565c0", fillOpacity: 1,
                                        className: "street-me" }).addTo(this.me);
      this.map.setView([lat, lon], 16);
    }
  }

  function note(wrap, key) {
    let p = wrap.nextElementSibling;
    if (!p || !p.classList.contains("map-note")) {
      p = Object.assign(document.createElement("p"), { className: "map-note meta" });
      p.setAttribute("role", "status");
      wrap.after(p);
    }
    p.textContent = window.Qala.t(key);
    p.hidden = false;
  }

  // the network map's buses (every route's), now and then every refresh-s seconds while the page is in view
  function followVehicles(wrap, face) {
    const everyMs = Math.min(Math.max(Number(wrap.dataset.refreshS) || 15, 1), 120) * 1000;
    const load = async () => {
      if (document.hidden) return;
      try {
        face.setVehicles((await window.Qala.getJSON(wrap.dataset.vehicles)).vehicles);
      } catch (ignored) { /* offline: the last buses stay; the page's search says when the server is away */ }
    };
    load();
    setInterval(load, everyMs);
  }

  // The map of a page: the SVG map at once, the street map over it as soon as its tiles load; every call goes to
  // both, so whichever shows is up to date.
  function open(svg, data, options) {
    const wrap = svg.parentElement;
    const face = { svg: new QalaMap(svg, data, options), street: null, vehicles: null };
    face.setVehicles = (vehicles, route) => {
      face.vehicles = [vehicles, route];
      face.svg.setVehicles(vehicles, route);
      if (face.street) face.street.setVehicles(vehicles, route);
    };
    face.highlight = (ids) => { face.svg.highlight(ids); if (face.street) face.street.highlight(ids); };
    face.setMe = (lat, lon) => { face.svg.setMe(lat, lon); if (face.street) face.street.setMe(lat, lon); };
    wrap.dataset.map = "svg";
    if (wrap.dataset.vehicles) followVehicles(wrap, face);
    if (!wrap.dataset.tiles) return face; // no tile server configured: the SVG map is the map
    const fallBack = () => {
      if (face.street) face.street.remove();
      face.street = null;
      wrap.classList.remove("street");
      wrap.dataset.map = "fallback";
      note(wrap, "street_fallback");
    };
    if (navigator.onLine === false) { fallBack(); return face; }
    loadLeaflet(wrap).then((L) => {
      const street = new StreetMap(L, wrap, data, options);
      face.street = street;
      if (face.vehicles) street.setVehicles(...face.vehicles);
      street.start(() => {
        if (face.street !== street) return;
        wrap.classList.add("street");
        wrap.dataset.map = "street";
        street.map.invalidateSize();
      }, () => { if (face.street === street) fallBack(); });
    }).catch(fallBack);
    return face;
  }

  return { QalaMap, StreetMap, open, stopPopup, busLabel };
})();
