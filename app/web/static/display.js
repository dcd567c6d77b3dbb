// Smart-stop board: polls the arrivals API with If-None-Match, rotates kk / ru / en (or keeps ?lang=), sizes its
// rows from the screen (or ?rows=), shows stale/offline states, keeps the stop's clock and idles at night.
"use strict";
(function () {
  const settings = JSON.parse(document.getElementById("settings").textContent);
  const LANGS = settings.lang ? [settings.lang] : ["kk", "ru", "en"];
  const LABELS = {
    kk: { route: "Бағыт", to: "Қайда", min: "Мин", live: "Нақты уақыт", scheduled: "Кесте бойынша",
          empty: "Жақын арада автобус жоқ", now: "қазір", minutes: "мин", ok: "Жаңартылды",
          stale: "Деректер ескірген", offline: "Байланыс жоқ", scheduleOnly: "Тек кесте" },
    ru: { route: "Маршрут", to: "Куда", min: "Мин", live: "Онлайн", scheduled: "По расписанию",
          empty: "Ближайших автобусов нет", now: "сейчас", minutes: "мин", ok: "Обновлено",
          stale: "Данные устарели", offline: "Нет связи", scheduleOnly: "Только расписание" },
    en: { route: "Route", to: "To", min: "Min", live: "Live", scheduled: "Scheduled",
          empty: "No buses soon", now: "now", minutes: "min", ok: "Updated",
          stale: "Data is out of date", offline: "Offline", scheduleOnly: "Timetable only" },
  };
  const MIN_CONTRAST = 4.5;  // WCAG AA for text: a feed's colour pair below it gets black or white text instead
  const url = "/api/v1/stops/" + encodeURIComponent(settings.stopId) + "/arrivals?limit=" + settings.limit;
  const clockFormat = new Intl.DateTimeFormat("ru-RU",
    { hour: "2-digit", minute: "2-digit", timeZone: settings.timezone });
  let board = null, etag = null, lastContact = 0, failing = false, langIndex = 0, emptySince = null, drawn = "";

  function t(key) { return LABELS[LANGS[langIndex]][key]; }

  function el(tag, props, children) {
    const node = Object.assign(document.createElement(tag), props || {});
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  // --- states ------------------------------------------------------------------------------------------

  function state() {
    const now = Date.now();
    if (failing || !navigator.onLine || (board && now - lastContact > settings.staleS * 1000)) return "offline";
    if (!board) return "loading";
    if (now - Date.parse(board.generated_at) > settings.staleS * 1000) return "stale";
    return board.source === "schedule" ? "scheduled" : "live";
  }

  function idle() {
    return emptySince !== null && Date.now() - emptySince >= settings.idleS * 1000;
  }

  // --- route colours -----------------------------------------------------------------------------------

  function hexColor(value) { return /^[0-9a-fA-F]{6}$/.test(value || "") ? "#" + value : null; }

  function luminance(hex) {
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }

  function contrast(a, b) {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  }

  function badgeColors(a) {
    const background = hexColor(a.route_color) || "#00838f";
    const text = hexColor(a.route_text_color);
    if (text && contrast(background, text) >= MIN_CONTRAST) return [background, text];
    return [background, contrast(background, "#000000") >= contrast(background, "#ffffff") ? "#000000" : "#ffffff"];
  }

  // --- rows --------------------------------------------------------------------------------------------

  function headsign(a) {
    const lang = LANGS[langIndex];
    return (a.headsign_translations && a.headsign_translations[lang]) || a.headsign || "";
  }

  function row(a) {
    const badge = el("span", { className: "route", textContent: a.route_short_name || a.route_id });
    [badge.style.background, badge.style.color] = badgeColors(a);
    const minutes = a.minutes_away <= 0 ? t("now") : String(a.minutes_away);
    const unit = a.minutes_away <= 0 ? [] : [el("small", { textContent: t("minutes") })];
    return el("li", { className: a.realtime ? "live" : "scheduled" }, [
      el("span", {}, [badge]), el("span", { className: "headsign" }, [el("span", { textContent: headsign(a) })]),
      el("span", { className: "minutes" }, [minutes, ...unit]),
    ]);
  }

  // How many whole rows fit between the headings and the footer, and their height: rows of about 1.9 times a
  // type size set by the screen's smaller side, or exactly ?rows= of them.
  function rowLayout(list) {
    const area = list.getBoundingClientRect().height;
    const type = Math.min(window.innerHeight * 0.056, window.innerWidth * 0.06);
    const count = settings.rows || Math.max(1, Math.min(settings.limit, Math.floor(area / (type * 1.9))));
    const height = Math.floor(area / count);
    return { count, height, type: Math.min(type, height * 0.55) };
  }

  // A text too long for its cell scrolls to its end and back, gently, instead of being cut.
  function marquee(cell) {
    const overflow = cell.scrollWidth - cell.clientWidth;
    cell.classList.toggle("marquee", overflow > 1);
    cell.style.setProperty("--marquee-shift", -overflow + "px");
    cell.style.setProperty("--marquee-s", Math.max(6, overflow / 40).toFixed(1) + "s");
  }

  function drawRows() {
    const list = document.getElementById("rows");
    const layout = rowLayout(list);
    const arrivals = board.arrivals.slice(0, layout.count);
    const key = JSON.stringify([arrivals, LANGS[langIndex], layout, window.innerWidth]);
    if (key === drawn) return;  // redrawing unchanged rows would restart every marquee
    drawn = key;
    list.style.setProperty("--row-h", layout.height + "px");
    list.style.setProperty("--row-fs", layout.type.toFixed(1) + "px");
    list.replaceChildren(...arrivals.map(row));
    list.querySelectorAll(".headsign").forEach(marquee);
    document.getElementById("empty").hidden = arrivals.length > 0;
  }

  // --- the page ----------------------------------------------------------------------------------------

  function drawStatus() {
    const current = state();
    document.body.dataset.state = current;
    const status = { live: t("ok"), scheduled: t("scheduleOnly"), stale: t("stale"), offline: t("offline"),
                     loading: "…" }[current];
    const text = status + (board ? " " + board.generated_at.slice(11, 16) : "");
    // written only when it changes: a live region re-announces every write, and this runs every second
    [document.getElementById("status"), document.querySelector("#idle .idle-status")].forEach((node) => {
      if (node.textContent !== text) node.textContent = text;
    });
    const resting = idle(), card = document.getElementById("idle");
    document.body.toggleAttribute("data-idle", resting);
    if (card.hidden === resting) {
      card.hidden = !resting;
      drift();
    }
  }

  function render() {
    const lang = LANGS[langIndex];
    document.body.dataset.lang = lang;
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-label]").forEach((n) => { n.textContent = t(n.dataset.label); });
    drawStatus();
    if (!board) return;
    const names = board.stop.translations || {};
    const name = lang === "ru" ? board.stop.name : (names[lang] || board.stop.name);
    const title = document.getElementById("stop-name");
    if (title.dataset.name !== name) {
      title.dataset.name = name;
      title.replaceChildren(el("span", { textContent: name }));
      marquee(title);
    }
    document.querySelector("#idle .idle-name").textContent = name;
    drawRows();
  }

  function take(next) {
    board = next;
    const empty = board.arrivals.length === 0;
    if (!empty) emptySince = null;
    else if (emptySince === null) emptySince = Date.now();
  }

  async function poll() {
    try {
      const headers = { Accept: "application/json" };
      if (etag) headers["If-None-Match"] = etag;
      const response = await fetch(url, { headers, cache: "no-store" });
      failing = !(response.status === 200 || response.status === 304);
      if (response.status === 200) {
        take(await response.json());
        etag = response.headers.get("ETag");
      }
      if (!failing) lastContact = Date.now();
    } catch (error) {
      failing = true;  // no connection: keep the last board on screen, marked offline
    }
    render();
  }

  function tick() {
    const time = clockFormat.format(new Date());
    document.getElementById("clock").textContent = time;
    document.querySelector("#idle .idle-clock").textContent = time;
    drawStatus();
  }

  // The idle card wanders to a new random place inside the screen, so no pixel stays lit.
  function drift() {
    const card = document.getElementById("idle");
    if (card.hidden) return;
    const x = Math.random() * Math.max(0, window.innerWidth - card.offsetWidth);
    const y = Math.random() * Math.max(0, window.innerHeight - card.offsetHeight);
    card.style.transform = "translate(" + Math.round(x) + "px, " + Math.round(y) + "px)";
  }

  document.getElementById("idle").style.setProperty("--drift-s", (settings.driftS * 0.9).toFixed(1) + "s");
  window.addEventListener("offline", render);
  window.addEventListener("online", poll);
  window.addEventListener("resize", () => { marquee(document.getElementById("stop-name")); if (board) drawRows(); });
  poll();
  tick();
  setInterval(poll, settings.pollS * 1000);
  setInterval(tick, 1000);
  setInterval(drift, settings.driftS * 1000);
  if (LANGS.length > 1) setInterval(() => { langIndex = (langIndex + 1) % LANGS.length; render(); }, settings.rotateS * 1000);
})();
