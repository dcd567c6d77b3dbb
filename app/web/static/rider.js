// Shared helpers of the rider pages: translated UI words from the page, DOM building, JSON fetching, formats.
"use strict";
window.Qala = (function () {
  const strings = JSON.parse(document.getElementById("qala-strings").textContent);
  const lang = document.documentElement.lang || "ru";

  function t(key, vars) {
    let text = strings[key] || key;
    Object.entries(vars || {}).forEach(([k, v]) => { text = text.replace("{" + k + "}", v); });
    return text;
  }

  function el(tag, props, children) {
    const node = Object.assign(document.createElement(tag), props || {});
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  async function getJSON(url, options) {
    const init = Object.assign({}, options || {});
    init.headers = Object.assign({ Accept: "application/json" }, init.headers || {});
    const response = await fetch(url, init);
    let body = null;
    try { body = await response.json(); } catch (ignored) { body = null; }
    if (!response.ok) {
      const error = new Error(body && body.error ? body.error.message : response.statusText);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function postJSON(url, data, headers) {
    return getJSON(url, { method: "POST", body: JSON.stringify(data),
                          headers: Object.assign({ "Content-Type": "application/json" }, headers || {}) });
  }

  // the stop's name in the page language when the feed translates it
  function stopName(stop) {
    return (stop.translations && stop.translations[lang]) || stop.name;
  }

  // WCAG contrast, as app/web/colors.py: the feed's text colour if legible on the route colour, else black or white
  function luminance(hex) {
    const channel = (i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
  }
  function contrast(a, b) {
    const [high, low] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (high + 0.05) / (low + 0.05);
  }
  const HEX = /^[0-9A-Fa-f]{6}$/;
  const darker = (hex) => [0, 2, 4].map((i) => Math.floor(parseInt(hex.slice(i, i + 2), 16) * 0.9)
    .toString(16).padStart(2, "0")).join("").toUpperCase();

  function routeBadge(shortName, color, href, title, textColor) {
    const badge = el(href ? "a" : "span", { className: "route", textContent: shortName });
    if (href) badge.href = href;
    if (title) badge.title = title;
    let text = HEX.test(textColor || "") ? textColor : null;
    let background = HEX.test(color || "") ? color.toUpperCase() : "00838F";
    if (text === null || contrast(background, text) < 4.5) {
      text = contrast(background, "FFFFFF") >= contrast(background, "17202C") ? "FFFFFF" : "17202C";
    }
    while (contrast(background, text) < 4.5) {  // neither text is legible on a mid-tone: darken it, as colors.py
      background = darker(background);
      text = "FFFFFF";
    }
    badge.style.background = "#" + background;
    badge.style.color = "#" + text;
    return badge;
  }

  function clock(iso) { return iso && iso.length >= 16 ? iso.slice(11, 16) : ""; }

  function money(tiyn) {
    const sign = tiyn < 0 ? "−" : "";
    const abs = Math.abs(tiyn);
    const tenge = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
    const rest = abs % 100;
    return sign + tenge + (rest ? "." + String(rest).padStart(2, "0") : "") + " ₸";
  }

  // the last few stops this phone opened, with their names in each language seen, newest first
  const RECENT = "qala_recent_stops";
  function recentStops() {
    try { return JSON.parse(localStorage.getItem(RECENT) || "[]"); } catch (ignored) { return []; }
  }
  function rememberStop(stopId, name) {
    const known = recentStops();
    const old = known.find((s) => s.stop_id === stopId);
    const names = Object.assign({}, old ? old.names : {}, { [lang]: name });
    const next = [{ stop_id: stopId, names }].concat(known.filter((s) => s.stop_id !== stopId)).slice(0, 5);
    try { localStorage.setItem(RECENT, JSON.stringify(next)); } catch (ignored) { /* private mode: no memory */ }
  }

  // the installable app: the service worker (sw.js, served at the site's root) keeps the shell and the last boards
  if ("serviceWorker" in navigator && document.body.dataset.sw) {
    navigator.serviceWorker.register(document.body.dataset.sw, { scope: "/" })
      .catch((error) => console.warn("service worker not registered", error));
  }

  return { t, el, getJSON, postJSON, lang, stopName, routeBadge, clock, money, recentStops, rememberStop };
})();
