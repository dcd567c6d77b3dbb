// The stop page's "my bus is N minutes away" alert. The rider picks one arrival (a trip on a service day, not just a
// route: the next bus of the same route does not set it off) and N; while the page is open, each fresh board is
// checked, and when that trip's live row is N minutes away or less a prominent in-page alert shows, with a system
// notification if the rider allowed them and a vibration where the phone has one. It clears when the trip has left
// the board. The choice lives in sessionStorage, so a reload or a language switch keeps it; old (offline) boards
// never set it off — stop.js hands over fresh boards only.
"use strict";
window.QalaAlert = (function () {
  const setup = document.getElementById("alert-setup");
  if (!setup) return null;
  const Q = window.Qala;
  const words = JSON.parse(document.getElementById("pwa-strings").textContent);
  const stopId = document.getElementById("board").dataset.stopId;
  const KEY = "qala_alert_" + stopId;
  const tripSelect = document.getElementById("alert-trip");
  const minutesSelect = document.getElementById("alert-minutes");
  const status = document.getElementById("alert-status");
  const cancel = document.getElementById("alert-cancel");
  const banner = document.getElementById("bus-alert");
  const bannerText = document.getElementById("bus-alert-text");

  function t(key, vars) {
    let text = words[key] || key;
    Object.entries(vars || {}).forEach(([k, v]) => { text = text.replace("{" + k + "}", v); });
    return text;
  }

  function load() {
    try { return JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (ignored) { return null; }
  }
  function store(state) {
    try {
      if (state) sessionStorage.setItem(KEY, JSON.stringify(state)); else sessionStorage.removeItem(KEY);
    } catch (ignored) { /* private mode: the alert lasts as long as this page */ }
    current = state;
  }
  let current = load();

  function tripKey(a) { return a.trip_id + "|" + a.service_date; }

  // the choice of buses follows the board (rebuilt only when it changed: a list open on a phone stays open);
  // the one chosen stays chosen while it is on it
  function offer(arrivals, headsign) {
    const chosen = tripSelect.value;
    const shown = arrivals.map((a) => tripKey(a) + " " + (a.predicted_time || a.scheduled_time)).join();
    if (shown === tripSelect.dataset.shown) return;
    tripSelect.dataset.shown = shown;
    tripSelect.replaceChildren(...arrivals.map((a) => {
      const route = a.route_short_name || a.route_id;
      const to = headsign(a);
      const option = Q.el("option", { value: tripKey(a),
                                      textContent: route + " → " + to + " · " + Q.clock(a.predicted_time || a.scheduled_time) });
      option.dataset.route = route;
      option.dataset.to = to;
      return option;
    }));
    if (arrivals.some((a) => tripKey(a) === chosen)) tripSelect.value = chosen;
  }

  function showSet() {
    status.textContent = current ? t("alert_set", { route: current.route, n: current.n }) : "";
    cancel.hidden = !current;
  }

  function notify(text) {
    if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const options = { body: text, tag: "qala-alert-" + stopId, icon: "/icons/qala-192.png" };
    const worker = navigator.serviceWorker;
    // phones allow notifications only through the service worker; a desktop without one takes them directly
    if (worker && worker.controller) {
      worker.ready.then((registration) => registration.showNotification(t("alert_title"), options))
        .catch((error) => console.warn("notification not shown", error));
    } else {
      try { new Notification(t("alert_title"), options); } catch (error) { console.warn("notification not shown", error); }
    }
  }

  function raise(row) {
    const vars = { route: current.route, to: current.to, m: row.minutes_away };
    bannerText.textContent = row.minutes_away <= 0 ? t("alert_now", vars) : t("alert_due", vars);
    banner.dataset.trip = current.trip;
    banner.hidden = false;
    if (!current.fired) {
      store(Object.assign({}, current, { fired: true }));
      notify(bannerText.textContent);
    }
  }

  function passed() {
    const route = current.route;
    store(null);
    banner.hidden = true;
    showSet();
    status.textContent = t("alert_passed", { route });
  }

  // is the chosen bus near, or gone?
  function check(arrivals) {
    if (!current) return;
    const row = arrivals.find((a) => tripKey(a) === current.trip);
    if (!row) { passed(); return; }
    if (row.realtime && row.minutes_away <= current.n) raise(row);
    else banner.hidden = true;
  }

  let lastFresh = null; // the last fresh board's rows (none yet while the page shows its server-rendered board)

  function follow(arrivals, headsign) {
    lastFresh = arrivals;
    offer(arrivals, headsign);
    setup.hidden = arrivals.length === 0 && !current;
    check(arrivals);
  }

  function choose(event) {
    event.preventDefault();
    const option = tripSelect.selectedOptions[0];
    if (!option) return;
    store({ trip: option.value, route: option.dataset.route, to: option.dataset.to,
            n: Math.min(Math.max(Number(minutesSelect.value) || 5, 1), 15), fired: false });
    banner.hidden = true;
    showSet();
    if (lastFresh) check(lastFresh); // a bus already within N minutes need not wait for the next board
    if ("Notification" in window && Notification.permission === "default") {
      Notification.requestPermission().catch((error) => console.warn("no notification permission", error));
    }
  }

  document.getElementById("alert-form").addEventListener("submit", choose);
  cancel.addEventListener("click", () => { store(null); banner.hidden = true; showSet(); });
  // "got it": the rider has seen it, so the alert is done (it would otherwise show again with the next board)
  document.getElementById("bus-alert-dismiss").addEventListener("click", () => { store(null); banner.hidden = true; showSet(); });
  setup.hidden = tripSelect.options.length === 0 && !current;
  showSet();
  return { follow, active: () => current !== null };
})();
