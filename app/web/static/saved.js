// Saved stops, kept on the phone (localStorage; no account needed): the star on a stop page saves or forgets the
// stop, and the home page lists the saved ones with their next buses — one small arrivals request per stop, as
// the API has no batched one. An answer the service worker kept from before (no connection) is marked as old.
"use strict";
// run once every deferred script has (the home page loads this file from inside its page, before rider.js)
document.addEventListener("DOMContentLoaded", function () {
  const Q = window.Qala;
  const KEY = "qala_saved_stops";
  const MAX = 12;
  const NEXT = 3; // buses shown per saved stop on the home page
  const words = JSON.parse(document.getElementById("pwa-strings").textContent);

  function saved() {
    try { return JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (ignored) { return []; }
  }
  function write(stops) {
    try { localStorage.setItem(KEY, JSON.stringify(stops.slice(0, MAX))); } catch (ignored) { /* private mode */ }
  }
  function isSaved(stopId) { return saved().some((s) => s.stop_id === stopId); }

  // save with the name in this page's language (other languages' names seen before are kept), or forget
  function toggle(stopId, name) {
    const stops = saved();
    const old = stops.find((s) => s.stop_id === stopId);
    if (old) { write(stops.filter((s) => s !== old)); return false; }
    write([{ stop_id: stopId, names: { [Q.lang]: name } }].concat(stops));
    return true;
  }

  function starButton() {
    const button = document.getElementById("save-stop");
    const board = document.getElementById("board");
    if (!button || !board) return;
    const stopId = board.dataset.stopId;
    const name = document.getElementById("stop-name").textContent;
    const show = (on) => button.setAttribute("aria-pressed", on ? "true" : "false");
    show(isSaved(stopId));
    button.addEventListener("click", () => show(toggle(stopId, name)));
    button.hidden = false;
  }

  function nextBuses(body, old) {
    const arrivals = body.arrivals.slice(0, NEXT);
    const line = Q.el("span", { className: "next" });
    if (!arrivals.length) line.append(Q.t("no_buses"));
    arrivals.forEach((a) => {
      const minutes = a.minutes_away <= 0 ? Q.t("now") : a.minutes_away + " " + Q.t("min");
      line.append(Q.el("span", { className: "next-bus" }, [
        Q.routeBadge(a.route_short_name || a.route_id, a.route_color, "", "", a.route_text_color),
        " " + (old ? Q.clock(a.predicted_time || a.scheduled_time) : minutes)]));
    });
    if (old) line.append(Q.el("small", { className: "old", textContent: words.as_of.replace("{time}", Q.clock(body.generated_at)) }));
    return line;
  }

  async function fillNext(item, stopId) {
    const holder = item.querySelector(".next-holder");
    try {
      const response = await fetch("/api/v1/stops/" + encodeURIComponent(stopId) + "/arrivals?limit=" + NEXT,
                                   { headers: { Accept: "application/json" }, cache: "no-cache" });
      if (!response.ok) throw new Error(response.statusText);
      const body = await response.json();
      if (body.stop) item.querySelector(".stop-name").textContent = Q.stopName(body.stop); // in this page's language
      holder.replaceChildren(nextBuses(body, response.headers.get("X-Qala-Copy") === "offline"));
    } catch (error) {
      holder.replaceChildren(Q.el("span", { className: "next", textContent: Q.t("offline") }));
    }
    item.dataset.loaded = "true";
  }

  function myStops() {
    const section = document.getElementById("my-stops");
    if (!section) return;
    const stops = saved();
    section.hidden = stops.length === 0;
    const items = stops.map((s) => {
      const link = Q.el("a", { className: "stop-link", href: "/stops/" + encodeURIComponent(s.stop_id) }, [
        Q.el("span", { className: "stop-name", textContent: s.names[Q.lang] || Object.values(s.names)[0] }),
        Q.el("span", { className: "next-holder" }),
      ]);
      const item = Q.el("li", {}, [link]);
      item.dataset.stopId = s.stop_id;
      fillNext(item, s.stop_id);
      return item;
    });
    document.getElementById("my-stops-list").replaceChildren(...items);
  }

  starButton();
  myStops();
});
