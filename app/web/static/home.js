// Home page: find a stop by name, near the rider (geolocation), or on the network map; results link to stop pages.
"use strict";
(function () {
  const form = document.getElementById("search");
  if (!form) return;
  const Q = window.Qala;
  const list = document.getElementById("stops");
  const status = document.getElementById("search-status");
  const didYouMean = document.getElementById("did-you-mean");
  let map = null;

  function stopItem(stop) {
    const link = Q.el("a", { href: "/stops/" + encodeURIComponent(stop.stop_id), className: "stop-link" });
    const name = Q.stopName(stop);
    link.append(Q.el("span", { className: "stop-name", textContent: name }));
    const details = [];
    if (stop.code) details.push("№ " + stop.code);
    if (stop.distance_m !== undefined) details.push(Q.t("distance_m", { m: Math.round(stop.distance_m) }));
    const others = Object.values(stop.translations || {}).concat([stop.name]).filter((n, i, all) => n !== name && all.indexOf(n) === i);
    if (others.length) details.push(others.join(" · "));
    link.append(Q.el("small", { textContent: details.join(" · ") }));
    const routes = Q.el("span", { className: "chips" });
    (stop.routes || []).forEach((r) => routes.append(Q.routeBadge(r.route_short_name || r.route_id, r.route_color)));
    link.append(routes);
    return Q.el("li", {}, [link]);
  }

  // "Did you mean: Abay" — the API respells a query that matched only through typos; a click searches that
  function suggest(suggestions) {
    const links = (suggestions || []).map((text) => Q.el("a", { href: "?q=" + encodeURIComponent(text), textContent: text }));
    const parts = [Q.t("did_you_mean") + " "];
    links.forEach((link, i) => parts.push(...(i ? [", ", link] : [link])));
    didYouMean.replaceChildren(...parts);
    didYouMean.hidden = links.length === 0;
  }

  function pick(event) {
    const link = event.target.closest("a");
    if (!link) return;
    event.preventDefault();
    document.getElementById("q").value = link.textContent;
    search();
  }

  function show(stops, heading, suggestions) {
    suggest(suggestions);
    list.replaceChildren();
    status.textContent = stops.length ? (heading || "") : Q.t("no_stops");
    stops.forEach((stop) => list.append(stopItem(stop)));
    if (map) map.highlight(stops.map((s) => s.stop_id));
  }

  async function search(event) {
    if (event) event.preventDefault();
    const q = document.getElementById("q").value.trim();
    if (q.length < 2) return;
    history.replaceState(null, "", "?q=" + encodeURIComponent(q));
    try {
      const body = await Q.getJSON("/api/v1/stops?limit=20&q=" + encodeURIComponent(q));
      show(body.stops, "", body.suggestions);
    } catch (error) {
      status.textContent = error.message;
    }
  }

  function nearMe() {
    if (!navigator.geolocation) { status.textContent = Q.t("geo_unsupported"); return; }
    status.textContent = Q.t("locating");
    navigator.geolocation.getCurrentPosition(async (position) => {
      const { latitude, longitude } = position.coords;
      try {
        const near = latitude.toFixed(6) + "," + longitude.toFixed(6);
        const body = await Q.getJSON("/api/v1/stops?limit=10&radius=1000&near=" + near);
        show(body.stops, Q.t("stops_near"));
        if (map) map.setMe(latitude, longitude);
      } catch (error) {
        status.textContent = error.message;
      }
    }, () => { status.textContent = Q.t("geo_denied"); }, { enableHighAccuracy: true, timeout: 15000 });
  }

  async function loadMap() {
    const svg = document.getElementById("map");
    try {
      const data = await Q.getJSON(svg.dataset.src);
      const popup = document.getElementById("map-popup");
      map = window.QalaMap.open(svg, data, { onStop: (stop) => window.QalaMap.stopPopup(popup, stop) });
      svg.dataset.ready = "true";
    } catch (error) {
      svg.replaceWith(Q.el("p", { className: "notice", textContent: error.message }));
    }
  }

  function showRecent() {
    const recent = Q.recentStops();
    if (!recent.length) return;
    document.getElementById("recent-stops").replaceChildren(...recent.map((s) => Q.el("li", {}, [
      Q.el("a", { className: "stop-link", href: "/stops/" + encodeURIComponent(s.stop_id) },
           [Q.el("span", { className: "stop-name", textContent: s.names[Q.lang] || Object.values(s.names)[0] })]),
    ])));
    document.getElementById("recent").hidden = false;
  }

  form.addEventListener("submit", search);
  didYouMean.addEventListener("click", pick);
  showRecent();
  document.getElementById("near-me").addEventListener("click", nearMe);
  loadMap();
  if (document.getElementById("q").value.trim()) search();
})();
