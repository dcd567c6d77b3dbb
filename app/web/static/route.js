// Route page: the route on our SVG map with its live vehicles, refreshed from the vehicles snapshot.
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live) return;
  const Q = window.Qala;
  const data = JSON.parse(document.getElementById("route-map-data").textContent);
  const color = data.routes.length ? data.routes[0].color : "00838f";
  const popup = document.getElementById("map-popup");
  const map = new window.QalaMap.QalaMap(document.getElementById("route-map"), data,
                                          { onStop: (stop) => window.QalaMap.stopPopup(popup, stop) });
  map.setVehicles(data.vehicles, color);
  const everyMs = Math.min(Math.max(Number(live.dataset.refreshS) || 15, 1), 120) * 1000;

  function stopNames(directionId) {
    const section = document.querySelector('.direction[data-direction-id="' + (directionId === null ? "" : directionId) + '"]');
    return section ? [...section.querySelectorAll(".route-stops li a")].map((a) => a.textContent) : [];
  }

  function where(v) {
    const names = stopNames(v.direction_id);
    if (v.after_stop !== null && v.next_stop !== null && names.length) {
      return Q.t("between", { a: names[v.after_stop], b: names[v.next_stop] });
    }
    if (v.after_stop !== null && names.length) return names[v.after_stop];
    return Q.t("at_start");
  }

  function render(vehicles) {
    const list = document.getElementById("vehicles");
    list.replaceChildren(...vehicles.map((v) => {
      const item = Q.el("li", { className: "vehicle" }, [
        Q.el("span", { className: "bus", textContent: "●" }), " ", Q.el("strong", { textContent: v.vehicle_id }),
        " — " + where(v) + " ", Q.el("span", { className: "meta", textContent: "(" + Q.t("seen", { s: v.age_s }) + ")" }),
      ]);
      item.dataset.vehicleId = v.vehicle_id;
      return item;
    }));
    document.getElementById("no-vehicles").hidden = vehicles.length > 0;
    document.querySelectorAll(".direction").forEach((section) => {
      const dir = section.dataset.directionId === "" ? null : Number(section.dataset.directionId);
      section.querySelectorAll(".route-stops li").forEach((li) => {
        const tags = li.querySelector(".buses");
        tags.replaceChildren(...vehicles.filter((v) => v.direction_id === dir && v.after_stop === Number(li.dataset.index))
          .map((v) => Q.el("span", { className: "bus-tag", textContent: "● " + v.vehicle_id })));
      });
    });
    map.setVehicles(vehicles, color);
  }

  async function refresh() {
    if (document.hidden) return;
    try {
      const body = await Q.getJSON(live.dataset.src);
      render(body.vehicles);
    } catch (error) {
      document.getElementById("no-vehicles").textContent = Q.t("offline");
    }
  }

  setInterval(refresh, everyMs);
})();
