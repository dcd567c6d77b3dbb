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

  function routeBadge(shortName, color, href, title) {
    const badge = el(href ? "a" : "span", { className: "route", textContent: shortName });
    if (href) badge.href = href;
    if (title) badge.title = title;
    badge.style.background = "#" + (color || "00838f");
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

  return { t, el, getJSON, postJSON, lang, stopName, routeBadge, clock, money };
})();
