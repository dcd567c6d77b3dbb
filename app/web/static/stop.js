// Stop page: refresh the arrivals from the JSON API, live vs timetable rows. Without a connection the page shows
// the last board it saw, marked "as of HH:MM — no connection", with the minutes counted again from the clock and
// buses already gone left out; only fresh boards reach the bus alert (bus_alert.js).
"use strict";
(function () {
  const board = document.getElementById("board");
  if (!board) return;
  const Q = window.Qala;
  const words = JSON.parse(document.getElementById("pwa-strings").textContent);
  const rows = document.getElementById("arrivals");
  const meta = document.getElementById("board-meta");
  const oldNote = document.getElementById("board-old");
  const url = "/api/v1/stops/" + encodeURIComponent(board.dataset.stopId) + "/arrivals?limit=20";
  const headsigns = JSON.parse(document.getElementById("headsigns").textContent);
  const everyMs = Math.min(Math.max(Number(board.dataset.refreshS) || 20, 1), 120) * 1000;
  let shownAt = board.dataset.generatedAt; // generated_at of the board on screen

  function headsign(a) { return headsigns[a.headsign || ""] || a.headsign || ""; }

  function minutesText(minutes) { return minutes <= 0 ? Q.t("now") : minutes + " " + Q.t("min"); }

  function row(a, minutes) {
    const when = Q.el("td", {}, [
      Q.el("span", { className: "when", textContent: Q.clock(a.predicted_time || a.scheduled_time) }), " ",
      Q.el("span", { className: "kind", textContent: a.realtime ? Q.t("live") : Q.t("scheduled") }),
    ]);
    const tr = Q.el("tr", { className: a.realtime ? "live" : "scheduled" }, [
      Q.el("td", {}, [Q.routeBadge(a.route_short_name || a.route_id, a.route_color,
                                   "/routes/" + encodeURIComponent(a.route_id), "", a.route_text_color)]),
      Q.el("td", { textContent: headsign(a) }), when,
      Q.el("td", { className: "minutes", textContent: minutesText(minutes) }),
    ]);
    tr.dataset.trip = a.trip_id + "|" + a.service_date;
    return tr;
  }

  // an old board's minutes come from its times and the clock now: its own minutes_away were true then, not now
  function minutesFromNow(a) {
    return Math.floor((Date.parse(a.predicted_time || a.scheduled_time) - Date.now()) / 60000);
  }

  function render(arrivals, old) {
    const shown = old ? arrivals.filter((a) => minutesFromNow(a) >= 0) : arrivals;
    const fresh = shown.map((a) => row(a, old ? minutesFromNow(a) : a.minutes_away));
    if (!fresh.length) fresh.push(Q.el("tr", { className: "empty" }, [Q.el("td", { colSpan: 4, textContent: Q.t("no_buses") })]));
    rows.replaceChildren(...fresh);
  }

  function markOld(generatedAt) {
    board.dataset.state = "old";
    oldNote.textContent = words.as_of.replace("{time}", Q.clock(generatedAt));
    oldNote.hidden = false;
    meta.textContent = Q.t("offline");
  }

  function markFresh(body) {
    board.dataset.state = "fresh";
    oldNote.hidden = true;
    meta.textContent = Q.t(body.realtime ? "live" : "scheduled") + " · " + Q.t("updated") + " " +
      (body.generated_at || "").slice(11, 19) + " (" + (body.timezone || "") + ")";
  }

  // the API's answer, and whether it is the service worker's kept copy (the network could not be reached)
  // (always asking the server, with the ETag: a 304 is cheap, and without a connection the worker's copy is marked)
  async function fetchBoard() {
    const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-cache" });
    if (!response.ok) throw new Error(response.statusText);
    return { body: await response.json(), copy: response.headers.get("X-Qala-Copy") === "offline" };
  }

  async function refresh() {
    if (document.hidden) return;
    let answer;
    try {
      answer = await fetchBoard();
    } catch (error) {
      markOld(shownAt); // no answer at all: what is on screen is now old
      return;
    }
    const body = answer.body;
    render(body.arrivals, answer.copy);
    board.dataset.source = body.source || "";
    shownAt = body.generated_at;
    if (answer.copy) {
      markOld(body.generated_at);
    } else {
      markFresh(body);
      if (window.QalaAlert) window.QalaAlert.follow(body.arrivals, headsign);
    }
  }

  Q.rememberStop(board.dataset.stopId, document.getElementById("stop-name").textContent);
  if (board.dataset.page === "offline") markOld(shownAt); // the worker's kept copy of this page
  // a kept copy, or an alert to check, cannot wait for the first interval
  if (board.dataset.page === "offline" || (window.QalaAlert && window.QalaAlert.active())) refresh();
  setInterval(refresh, everyMs);
  document.addEventListener("visibilitychange", refresh);
})();
