// Stop page: refresh the arrivals from the JSON API (the browser revalidates with the ETag), live vs timetable rows.
"use strict";
(function () {
  const board = document.getElementById("board");
  if (!board) return;
  const Q = window.Qala;
  const rows = document.getElementById("arrivals");
  const meta = document.getElementById("board-meta");
  const url = "/api/v1/stops/" + encodeURIComponent(board.dataset.stopId) + "/arrivals?limit=20";
  const headsigns = JSON.parse(document.getElementById("headsigns").textContent);
  const everyMs = Math.min(Math.max(Number(board.dataset.refreshS) || 20, 1), 120) * 1000;

  function row(a) {
    const when = Q.el("td", {}, [
      Q.el("span", { className: "when", textContent: Q.clock(a.predicted_time || a.scheduled_time) }), " ",
      Q.el("span", { className: "kind", textContent: a.realtime ? Q.t("live") : Q.t("scheduled") }),
    ]);
    const minutes = a.minutes_away <= 0 ? Q.t("now") : a.minutes_away + " " + Q.t("min");
    return Q.el("tr", { className: a.realtime ? "live" : "scheduled" }, [
      Q.el("td", {}, [Q.routeBadge(a.route_short_name || a.route_id, a.route_color,
                                   "/routes/" + encodeURIComponent(a.route_id), "", a.route_text_color)]),
      Q.el("td", { textContent: headsigns[a.headsign || ""] || a.headsign || "" }), when,
      Q.el("td", { className: "minutes", textContent: minutes }),
    ]);
  }

  async function refresh() {
    if (document.hidden) return;
    try {
      const body = await Q.getJSON(url);
      const fresh = body.arrivals.map(row);
      if (!fresh.length) fresh.push(Q.el("tr", { className: "empty" }, [Q.el("td", { colSpan: 4, textContent: Q.t("no_buses") })]));
      rows.replaceChildren(...fresh);
      board.dataset.source = body.source || "";
      meta.textContent = Q.t(body.realtime ? "live" : "scheduled") + " · " + Q.t("updated") + " " +
        (body.generated_at || "").slice(11, 19) + " (" + (body.timezone || "") + ")";
    } catch (error) {
      meta.textContent = Q.t("offline");
    }
  }

  Q.rememberStop(board.dataset.stopId, document.getElementById("stop-name").textContent);
  setInterval(refresh, everyMs);
  document.addEventListener("visibilitychange", refresh);
})();
