// Route page: the route on the map with its buses on the line, the stop list marking where buses are, one line per
// bus; all refreshed from the route's vehicles answer (parked buses are already left out by the server).
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live) return;
  const Q = window.Qala;
  const data = JSON.parse(document.getElementById("route-map-data").textContent);
  const route = data.routes[0];
  const popup = document.getElementById("map-popup");
  const map = window.QalaMap.open(document.getElementById("route-map"), data,
                                  { onStop: (stop) => window.QalaMap.stopPopup(popup, stop) });
  map.setVehicles(data.vehicles, route);
  const everyMs = Math.min(Math.max(Number(live.dataset.refreshS) || 15, 1), 120) * 1000;

  function minutes(v) {
    if (v.minutes === null || v.minutes === undefined) return "";
    return v.minutes ? Q.t("minutes", { n: v.minutes }) : Q.t("now");
  }

  function busLine(v) {
    const parts = [Q.routeBadge(route.short_name, route.color, null, null, route.text_color), " ",
                   Q.el("span", { className: "to", textContent: "→ " + v.headsign })];
    if (v.next_stop_name) parts.push(" ", Q.el("span", { className: "next", textContent: Q.t("next_stop", { stop: v.next_stop_name }) }));
    if (minutes(v)) parts.push(" ", Q.el("strong", { className: "mins", textContent: minutes(v) }));
    return Q.el("li", { className: "vehicle" }, parts);
  }

  // on the line diagram: "bus here" at the stop a bus stands at, "approaching" at the stop a moving bus heads for
  function markStops(vehicles) {
    document.querySelectorAll(".direction").forEach((section) => {
      const dir = section.dataset.directionId === "" ? null : Number(section.dataset.directionId);
      const mine = vehicles.filter((v) => v.direction_id === dir);
      section.querySelectorAll(".route-stops li").forEach((li) => {
        const i = Number(li.dataset.index);
        const here = mine.find((v) => v.at_stop === i);
        const coming = mine.find((v) => v.at_stop === null && v.next_stop === i);
        li.classList.toggle("bus-here", Boolean(here));
        li.classList.toggle("bus-approaching", !here && Boolean(coming));
        const tag = here ? Q.el("span", { className: "bus-tag here", textContent: Q.t("bus_here") })
          : coming ? Q.el("span", { className: "bus-tag coming",
                                    textContent: Q.t("approaching") + (minutes(coming) ? " · " + minutes(coming) : "") })
            : null;
        li.querySelector(".buses").replaceChildren(...(tag ? [tag] : []));
      });
    });
  }

  function render(vehicles) {
    document.getElementById("vehicles").replaceChildren(...vehicles.map(busLine));
    const none = document.getElementById("no-vehicles");
    none.textContent = Q.t("no_vehicles");
    none.hidden = vehicles.length > 0;
    markStops(vehicles);
    map.setVehicles(vehicles, route);
  }

  async function refresh() {
    if (document.hidden) return;
    try {
      const body = await Q.getJSON(live.dataset.src);
      render(body.vehicles);
    } catch (error) {
      const none = document.getElementById("no-vehicles");
      none.textContent = Q.t("offline");
      none.hidden = false;
    }
  }

  setInterval(refresh, everyMs);
})();
