// Smart-stop board: polls the arrivals API with If-None-Match, rotates kk / ru / en, shows stale/offline states.
"use strict";
(function () {
  const settings = JSON.parse(document.getElementById("settings").textContent);
  const LANGS = ["kk", "ru", "en"];
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
  const url = "/api/v1/stops/" + encodeURIComponent(settings.stopId) + "/arrivals?limit=" + settings.limit;
  let board = null, etag = null, lastContact = 0, langIndex = 0;

  function t(key) { return LABELS[LANGS[langIndex]][key]; }

  function el(tag, props, children) {
    const node = Object.assign(document.createElement(tag), props || {});
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  function state() {
    const now = Date.now();
    if (!board || now - lastContact > settings.staleS * 1000) return board ? "offline" : "loading";
    if (now - Date.parse(board.generated_at) > settings.staleS * 1000) return "stale";
    return board.source === "schedule" ? "scheduled" : "live";
  }

  function row(a) {
    const badge = el("span", { className: "route", textContent: a.route_short_name || a.route_id });
    badge.style.background = "#" + (a.route_color || "00838f");
    badge.style.color = "#" + (a.route_text_color || "ffffff");
    const minutes = a.minutes_away <= 0 ? t("now") : String(a.minutes_away);
    const unit = a.minutes_away <= 0 ? [] : [el("small", { textContent: t("minutes") })];
    return el("li", { className: a.realtime ? "live" : "scheduled" }, [
      el("span", {}, [badge]), el("span", { className: "headsign", textContent: a.headsign || "" }),
      el("span", { className: "minutes" }, [minutes, ...unit]),
    ]);
  }

  function render() {
    const lang = LANGS[langIndex];
    document.body.dataset.lang = lang;
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-label]").forEach((n) => { n.textContent = t(n.dataset.label); });
    const current = state();
    document.body.dataset.state = current;
    const status = { live: t("ok"), scheduled: t("scheduleOnly"), stale: t("stale"), offline: t("offline"),
                     loading: "…" }[current];
    document.getElementById("status").textContent =
      status + (board ? " " + board.generated_at.slice(11, 16) : "");
    if (!board) return;
    const names = board.stop.translations || {};
    document.getElementById("stop-name").textContent = lang === "ru" ? board.stop.name : (names[lang] || board.stop.name);
    document.getElementById("rows").replaceChildren(...board.arrivals.map(row));
    document.getElementById("empty").hidden = board.arrivals.length > 0;
  }

  async function poll() {
    try {
      const headers = { Accept: "application/json" };
      if (etag) headers["If-None-Match"] = etag;
      const response = await fetch(url, { headers, cache: "no-store" });
      if (response.status === 200) {
        board = await response.json();
        etag = response.headers.get("ETag");
        lastContact = Date.now();
      } else if (response.status === 304) {
        lastContact = Date.now();
      }
    } catch (error) {
      // offline: keep the last board; the state turns "offline" once it is older than staleS
    }
    render();
  }

  function tick() {
    const zone = board ? board.timezone : undefined;
    document.getElementById("clock").textContent = new Date().toLocaleTimeString("ru-RU",
      { hour: "2-digit", minute: "2-digit", timeZone: zone });
  }

  poll();
  tick();
  setInterval(poll, settings.pollS * 1000);
  setInterval(() => { tick(); document.body.dataset.state = state(); }, 1000);
  setInterval(() => { langIndex = (langIndex + 1) % LANGS.length; render(); }, settings.rotateS * 1000);
})();
