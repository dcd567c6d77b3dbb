// The card page's history and dates: every instant written in the city's time zone (the feed's, from the page),
// whatever the phone's, with Intl.DateTimeFormat on the API's RFC 3339 values; rides with their fares, transfers
// (charged below their product's full price) and pass rides marked, top-ups and pass purchases, grouped by day.
// card.js (loaded after this file) uses window.QalaCardHistory.
"use strict";
window.QalaCardHistory = (function () {
  const Q = window.Qala;
  const SETUP = JSON.parse(document.getElementById("card-setup").textContent);
  const WORDS = JSON.parse(document.getElementById("card-strings").textContent);
  const PASS_PRODUCTS = new Set(Object.values(SETUP.passes).flat().map((offer) => offer.product));

  function t(key, vars) {
    let text = key in WORDS ? WORDS[key] : Q.t(key);
    Object.entries(vars || {}).forEach(([k, v]) => { text = text.replace("{" + k + "}", v); });
    return text;
  }

  // ---- dates and times in the city's zone, whatever the phone's ----
  const ZONE = SETUP.timezone;
  const DAY_KEY = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit" });
  const DAY_NAME = new Intl.DateTimeFormat(Q.lang, { timeZone: ZONE, dateStyle: "full" });
  const DATE = new Intl.DateTimeFormat(Q.lang, { timeZone: ZONE, dateStyle: "long" });
  const CLOCK = new Intl.DateTimeFormat(Q.lang, { timeZone: ZONE, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  // Desktop Chromium's ICU data has no Kazakh calendar names (it writes "2026 M03 10, Tue") though it claims the
  // locale: a month name with a digit in it gives that away, and the page then writes the city's dates itself
  // with CLDR's Kazakh names ("2026 ж. 10 наурыз, сейсенбі") or as 10.03.2026
  const NAMED = !/\d/.test(new Intl.DateTimeFormat(Q.lang, { month: "long" }).format(new Date(Date.UTC(2026, 0, 15))));
  const NUMERIC = new Intl.DateTimeFormat("en-US", { timeZone: ZONE, year: "numeric", month: "numeric",
                                                     day: "numeric", weekday: "short" });
  const WEEK = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const KK_MONTHS = ["қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз", "қыркүйек", "қазан",
                     "қараша", "желтоқсан"];
  const KK_DAYS = ["жексенбі", "дүйсенбі", "сейсенбі", "сәрсенбі", "бейсенбі", "жұма", "сенбі"];

  function cityDate(date) {
    const parts = {};
    NUMERIC.formatToParts(date).forEach((part) => { parts[part.type] = part.value; });
    return { year: parts.year, month: Number(parts.month), day: Number(parts.day), weekday: WEEK.indexOf(parts.weekday) };
  }

  function dayTitle(date) {
    if (NAMED) return DAY_NAME.format(date);
    const d = cityDate(date);
    if (Q.lang === "kk") return d.year + " ж. " + d.day + " " + KK_MONTHS[d.month - 1] + ", " + KK_DAYS[d.weekday];
    return shortDate(date);
  }

  function shortDate(date) {
    if (NAMED) return DATE.format(date);
    const d = cityDate(date);
    return String(d.day).padStart(2, "0") + "." + String(d.month).padStart(2, "0") + "." + d.year;
  }

  function productName(product) {
    const key = "product_" + product;
    return key in WORDS ? t(key) : product;
  }


  // ---- history: rides (with transfers and pass rides), top-ups and pass purchases, grouped by the city's day ----
  function denial(reason) {
    const key = "denied_" + reason;
    return Q.t("outcome_denied") + ": " + (key in WORDS ? t(key) : t("denied_card"));
  }

  function rideTag(tap, card) {
    if (tap.outcome === "double_tap") return Q.t("outcome_double_tap");
    if (tap.outcome !== "accepted") return denial(tap.reason);
    if (PASS_PRODUCTS.has(tap.product_id)) return t("pass_ride");
    const full = (SETUP.prices[card.category] || {})[tap.product_id];
    if (full === undefined || tap.fare >= full) return "";
    return tap.fare === 0 ? t("transfer_free") : t("transfer_discount");
  }

  function tapEntry(tap, card) {
    const route = SETUP.routes[tap.route_id] || tap.route_id;
    return { at: tap.at, what: route ? t("ride_on", { route }) : t("ride"), tag: rideTag(tap, card),
             amount: tap.outcome === "accepted" ? -tap.fare : null, kind: "ride" };
  }

  function paymentEntry(payment) {
    const key = "kind_" + payment.kind;
    let what = key in WORDS ? t(key) : Q.t(key);
    if (payment.kind === "pass_sale" && payment.reason) what += " · " + productName(payment.reason);
    return { at: payment.at, what, tag: "", amount: payment.amount, kind: payment.kind };
  }

  function entryRow(entry) {
    const amount = entry.amount === null ? "" : (entry.amount > 0 ? "+" : "") + Q.money(entry.amount);
    const what = Q.el("span", { className: "what", textContent: entry.what },
                      entry.tag ? [" ", Q.el("span", { className: "tag", textContent: entry.tag })] : []);
    return Q.el("li", { className: "entry " + entry.kind }, [
      Q.el("time", { dateTime: entry.at, textContent: CLOCK.format(new Date(entry.at)) }), what,
      Q.el("span", { className: "amount", textContent: amount }),
    ]);
  }

  function byDay(entries) {
    const days = new Map();
    entries.forEach((entry) => {
      const day = DAY_KEY.format(new Date(entry.at));
      if (!days.has(day)) days.set(day, []);
      days.get(day).push(entry);
    });
    return [...days.values()].map((items) => Q.el("section", { className: "day" }, [
      Q.el("h4", { textContent: dayTitle(new Date(items[0].at)) }),
      Q.el("ul", { className: "entries" }, items.map(entryRow)),
    ]));
  }

  // the day-by-day sections of one card's history answer (GET /api/v1/cards/<id>/history)
  function render(body, card) {
    // a ride's charge is its tap's fare: the ledger's "fare" postings would list every ride twice
    const entries = body.taps.map((tap) => tapEntry(tap, card))
      .concat(body.payments.filter((p) => p.kind !== "fare").map(paymentEntry))
      .sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
    return byDay(entries);
  }

  return { render, shortDate, productName };
})();
