// Home page: search stops through the JSON API and show the next buses at the chosen one.
"use strict";
(function () {
  const form = document.getElementById("search");
  if (!form) return;
  const list = document.getElementById("stops");
  const board = document.getElementById("board");
  let current = null;
  let timer = null;

  function el(tag, props, children) {
    const node = Object.assign(document.createElement(tag), props || {});
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    return body;
  }

  async function search(event) {
    event.preventDefault();
    const q = document.getElementById("q").value.trim();
    list.replaceChildren();
    try {
      const body = await getJSON("/api/v1/stops?limit=15&q=" + encodeURIComponent(q));
      if (!body.stops.length) list.append(el("li", { textContent: "—" }));
      body.stops.forEach((stop) => {
        const names = Object.values(stop.translations || {}).filter((n) => n !== stop.name);
        const button = el("button", { type: "button" }, [stop.name, " ", el("small", { textContent: names.join(" · ") })]);
        button.addEventListener("click", () => show(stop));
        list.append(el("li", {}, [button]));
      });
    } catch (error) {
      list.append(el("li", { textContent: error.message }));
    }
  }

  async function refresh() {
    if (!current) return;
    const rows = document.getElementById("arrivals");
    try {
      const body = await getJSON("/api/v1/stops/" + encodeURIComponent(current.stop_id) + "/arrivals?limit=12");
      rows.replaceChildren();
      body.arrivals.forEach((a) => {
        const badge = el("span", { className: "route", textContent: a.route_short_name || a.route_id });
        badge.style.background = "#" + (a.route_color || "00838f");
        // live rows carry a predicted time; timetable rows only the scheduled one
        const when = a.predicted_time || a.scheduled_time || "";
        rows.append(el("tr", { className: a.realtime ? "live" : "scheduled" }, [
          el("td", {}, [badge]), el("td", { textContent: a.headsign || "" }),
          el("td", { textContent: when.slice(11, 16) + (a.realtime ? "" : " ≈") }),
          el("td", { textContent: a.minutes_away }),
        ]));
      });
      if (!body.arrivals.length) rows.append(el("tr", {}, [el("td", { colSpan: 4, textContent: "No buses soon" })]));
      const live = body.arrivals.some((a) => a.realtime);
      document.getElementById("board-meta").textContent =
        (live ? "Live predictions, ≈ = timetable" : "Timetable times (≈)") +
        " · updated " + (body.generated_at || "").slice(11, 19) + " (" + (body.timezone || "") + ")";
    } catch (error) {
      document.getElementById("board-meta").textContent = error.message;
    }
  }

  function show(stop) {
    current = stop;
    board.hidden = false;
    document.getElementById("board-title").textContent = stop.name;
    refresh();
    clearInterval(timer);
    timer = setInterval(refresh, 30000);
  }

  form.addEventListener("submit", search);
})();
