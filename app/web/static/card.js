// Card page: anonymous balance check, the rider's account and cards, top-ups through the payment provider's
// checkout, passes paid from the card balance, and the history (formatted by card_history.js) — all through the
// rider API.
// Every error shown is the page's own words in its language, chosen by the API error's code and field: the
// API's English message never reaches the rider. Money is tiyn on the wire and tenge (₸) on the screen.
"use strict";
(function () {
  const Q = window.Qala;
  const SETUP = JSON.parse(document.getElementById("card-setup").textContent);
  const WORDS = JSON.parse(document.getElementById("card-strings").textContent);
  const TOKEN = "qala_rider_token";
  const LOGIN = "qala_rider_login";
  const $ = (id) => document.getElementById(id);
  const result = $("balance-result");
  const status = $("account-status");
  const { render: historyDays, shortDate, productName } = window.QalaCardHistory;
  let myCards = [];

  function t(key, vars) {
    let text = key in WORDS ? WORDS[key] : Q.t(key);
    Object.entries(vars || {}).forEach(([k, v]) => { text = text.replace("{" + k + "}", v); });
    return text;
  }

  function digits(value) { return value.replace(/\D/g, ""); }

  // ---- the API: one fetch wrapper that keeps the error's status, code and field ----
  function apiError(statusCode, code, field) {
    return Object.assign(new Error(code), { status: statusCode, code, field });
  }

  // a fresh Idempotency-Key for each attempt (crypto.randomUUID needs a secure context; this does not)
  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function api(method, url, body, options) {
    const opts = options || {};
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (opts.auth) headers.Authorization = "Bearer " + sessionStorage.getItem(TOKEN);
    if (opts.key) headers["Idempotency-Key"] = opts.key;
    let response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (ignored) {
      throw apiError(0, "network", null);
    }
    let data = null;
    try { data = await response.json(); } catch (ignored) { data = null; }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw apiError(response.status, error.code || "error", error.field || null);
    }
    return data;
  }

  // ---- errors in the page's language ----
  const FIELD_WORDS = { login: "err_login", password: "err_password", card: "err_card_number",
                        code: "err_card_code", product: "err_product" };

  function amountRange() {
    return t("err_amount", { min: Q.money(SETUP.top_up.min), max: Q.money(SETUP.top_up.max) });
  }

  function conflict(error, action) {
    if (action === "register") return t("err_login_taken");
    if (action === "link") return t("err_card_taken");
    if (error.field === "amount") return t("err_cap", { cap: Q.money(SETUP.top_up.cap) });
    if (action === "top_up" || action === "pass") return t("err_card_inactive");
    return t("err_repeated");
  }

  function explain(error, action) {
    if (error.status === 0) return t("err_network");
    if (error.status === 429) return action === "balance" ? t("too_many") : t("err_attempts");
    if (error.status === 401) return action === "login" ? t("login_failed") : t("err_session");
    if (error.code === "insufficient_funds") return t("err_insufficient");
    if (error.code === "payments_unavailable") return t("err_payments_off");
    if (error.status === 404) return action === "balance" || action === "link" ? t("card_not_found") : t("err_not_found");
    if (error.status === 409) return conflict(error, action);
    if (error.status === 400 && error.field === "amount") return amountRange();
    if (error.status === 400 && FIELD_WORDS[error.field]) return t(FIELD_WORDS[error.field]);
    return t("error");
  }

  // ---- form fields: our own checks and messages (novalidate: the browser's bubbles speak its own language) ----
  function fieldError(input, text) {
    $(input.id + "-error").textContent = text || "";
    if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  }

  function clearErrors(form) {
    form.querySelectorAll("input[aria-invalid]").forEach((input) => fieldError(input, ""));
  }

  // each check is [input, message or ""]; shows them all and focuses the first wrong field
  function passes(checks) {
    checks.forEach(([input, message]) => fieldError(input, message));
    const wrong = checks.find(([, message]) => message);
    if (wrong) wrong[0].focus();
    return !wrong;
  }

  function required(input) { return input.value.trim() ? "" : t("err_required"); }
  function cardNumber(input) { return required(input) || (digits(input.value).length === 19 ? "" : t("err_card_number")); }
  function cardCode(input) { return required(input) || (/^\d{3}$/.test(input.value.trim()) ? "" : t("err_card_code")); }

  // an API error goes next to its field when the form has it, else to ``fallback``
  function showError(error, action, fields, fallback) {
    const input = fields[error.field];
    const text = explain(error, action);
    if (input && error.status === 400) { fieldError(input, text); input.focus(); } else { say(fallback, text, "bad"); }
  }

  function say(node, text, kind) {
    node.textContent = text;
    node.classList.remove("ok", "bad");
    if (kind) node.classList.add(kind);
  }

  // ---- anonymous balance check ----
  $("balance-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const number = $("card-number");
    const code = $("card-code");
    say(result, "");
    if (!passes([[number, cardNumber(number)], [code, cardCode(code)]])) return;
    try {
      const body = await api("POST", "/api/v1/cards/balance", { card: digits(number.value), code: code.value.trim() });
      result.replaceChildren(Q.el("strong", { textContent: Q.t("balance") + ": " + Q.money(body.balance) }),
                             " · " + body.masked + " · " + Q.t("status_" + body.status));
      result.classList.add("ok");
    } catch (error) {
      showError(error, "balance", { card: number, code }, result);
    }
  });

  // ---- the rider's cards ----
  function auth() { return { auth: true }; }

  function panelButton(key, card, open) {
    const button = Q.el("button", { type: "button", className: "secondary", textContent: t(key) });
    button.dataset.action = key;
    button.addEventListener("click", () => open(card));
    return button;
  }

  function passLine(item) {
    return Q.el("span", { className: "pass", textContent: t("pass_valid", {
      name: productName(item.product), until: shortDate(new Date(item.valid_to)) }) });
  }

  function cardItem(card) {
    const actions = Q.el("span", { className: "card-actions" }, [panelButton("top_up", card, openTopUp),
      panelButton("buy_pass", card, openPasses), panelButton("history", card, openHistory)]);
    return Q.el("li", { className: "card-item" }, [
      Q.el("span", { className: "masked", textContent: card.masked }), " ",
      Q.el("strong", { className: "balance", textContent: Q.money(card.balance) }), " ",
      Q.el("span", { className: "meta", textContent: Q.t("status_" + card.status) }),
      ...(card.passes || []).map(passLine), actions,
    ]);
  }

  async function withPasses(card) {
    try {
      const body = await api("GET", "/rider/cards/" + card.card_id + "/passes.json", undefined, auth());
      return Object.assign(card, { passes: body.passes });
    } catch (ignored) {
      return Object.assign(card, { passes: [] });  // the card still shows; its passes on the next refresh
    }
  }

  async function showCards() {
    $("logged-out").hidden = true;
    $("logged-in").hidden = false;
    $("who").textContent = sessionStorage.getItem(LOGIN) || "";
    try {
      const body = await api("GET", "/api/v1/me/cards", undefined, auth());
      myCards = await Promise.all(body.cards.map(withPasses));
      const list = $("my-cards");
      list.replaceChildren(...myCards.map(cardItem));
      if (!myCards.length) list.append(Q.el("li", { textContent: Q.t("no_cards") }));
    } catch (error) {
      if (error.status === 401) { logout(); }
      say(status, explain(error, "cards"), "bad");
    }
  }

  function openPanel(id, titleKey, card) {
    ["top-up", "passes", "history"].forEach((panel) => { $(panel).hidden = panel !== id; });
    const title = $(id + "-title");
    title.textContent = t(titleKey, { card: card.masked });
    $(id).dataset.cardId = card.card_id;
    title.tabIndex = -1;
    title.focus();
  }

  // ---- top-up: an intent through the API, paid at the provider's checkout, credited by its webhook ----
  const custom = $("custom-amount");

  function chosenAmount() {
    const picked = document.querySelector("input[name=preset]:checked");
    if (picked && picked.value !== "other") return Number(picked.value);
    const text = custom.value.trim().replace(/\s/g, "");
    if (!/^\d{1,7}$/.test(text)) return null;
    const tiyn = Number(text) * 100;
    return tiyn >= SETUP.top_up.min && tiyn <= SETUP.top_up.max ? tiyn : null;
  }

  function updatePayLabel() {
    const amount = chosenAmount();
    $("top-up-submit").textContent = amount === null ? t("top_up") : t("pay", { amount: Q.money(amount) });
  }

  function openTopUp(card) {
    clearErrors($("top-up-form"));
    updatePayLabel();
    openPanel("top-up", "top_up_title", card);
  }

  custom.addEventListener("input", () => { $("preset-other").checked = true; updatePayLabel(); });
  document.querySelectorAll("input[name=preset]").forEach((radio) => radio.addEventListener("change", updatePayLabel));

  $("top-up-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const amount = chosenAmount();
    if (!passes([[custom, amount === null ? amountRange() : ""]])) return;
    const button = $("top-up-submit");
    button.disabled = true;
    say(status, t("paying"));
    try {
      const intent = await api("POST", "/api/v1/cards/" + $("top-up").dataset.cardId + "/payment-intents",
                               { amount }, { auth: true, key: newKey() });
      window.location.assign(intent.checkout_url);
    } catch (error) {
      button.disabled = false;
      showError(error, "top_up", { amount: custom }, status);
    }
  });

  // back from the provider's checkout (/card?payment=<intent id>): what became of the payment
  async function paymentOutcome(intentId, triesLeft) {
    try {
      const intent = await api("GET", "/api/v1/payment-intents/" + encodeURIComponent(intentId), undefined, auth());
      if (intent.status === "pending" && triesLeft > 0) {
        say(status, t("pending"));
        setTimeout(() => paymentOutcome(intentId, triesLeft - 1), 1500);
        return;
      }
      await showCards();
      const card = myCards.find((c) => c.card_id === intent.card_id);
      if (intent.status === "succeeded") {
        say(status, t("paid", { amount: Q.money(intent.amount), balance: card ? Q.money(card.balance) : "—" }), "ok");
      } else {
        say(status, intent.status === "pending" ? t("pending") : t("declined"), intent.status === "pending" ? "" : "bad");
      }
    } catch (error) {
      say(status, explain(error, "payment"), "bad");
    }
  }

  // ---- passes: bought from the card's balance through the API ----
  function offerItem(card, offer) {
    const button = Q.el("button", { type: "button", textContent: t("buy_for", { amount: Q.money(offer.price) }) });
    button.dataset.product = offer.product;
    button.addEventListener("click", () => buyPass(card, offer, button));
    return Q.el("li", { className: "offer" }, [
      Q.el("strong", { textContent: productName(offer.product) }), " ",
      Q.el("span", { className: "price", textContent: Q.money(offer.price) }),
      Q.el("p", { className: "meta", textContent: t("pass_days", { days: offer.days }) }), button,
    ]);
  }

  function openPasses(card) {
    const offers = SETUP.passes[card.category] || [];
    $("pass-offers").replaceChildren(...offers.map((offer) => offerItem(card, offer)));
    if (!offers.length) $("pass-offers").append(Q.el("li", { textContent: t("no_passes") }));
    say($("pass-error"), "");
    openPanel("passes", "pass_title", card);
  }

  async function buyPass(card, offer, button) {
    button.disabled = true;
    say($("pass-error"), t("buying"));
    try {
      const body = await api("POST", "/api/v1/cards/" + card.card_id + "/passes", { product: offer.product },
                             { auth: true, key: newKey() });
      say($("pass-error"), "");
      await showCards();
      say(status, t("pass_bought", { name: productName(body.pass.product),
                                     until: shortDate(new Date(body.pass.valid_to)) }), "ok");
    } catch (error) {
      say($("pass-error"), explain(error, "pass"), "bad");
    } finally {
      button.disabled = false;
    }
  }

  async function openHistory(card) {
    openPanel("history", "history_title", card);
    try {
      const body = await api("GET", "/api/v1/cards/" + card.card_id + "/history?limit=50", undefined, auth());
      const days = historyDays(body, card);
      $("history-days").replaceChildren(...days);
      if (!days.length) $("history-days").append(Q.el("p", { textContent: Q.t("no_history") }));
    } catch (error) {
      say(status, explain(error, "history"), "bad");
    }
  }

  // ---- account: log in, register, link a card, log out ----
  async function login(name, password) {
    const body = await api("POST", "/api/v1/riders/login", { login: name, password });
    sessionStorage.setItem(TOKEN, body.token);
    sessionStorage.setItem(LOGIN, name);
    say(status, "");
    await showCards();
  }

  function logout() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(LOGIN);
    $("logged-out").hidden = false;
    $("logged-in").hidden = true;
    ["top-up", "passes", "history"].forEach((panel) => { $(panel).hidden = true; });
  }

  function credentials() {
    const name = $("login");
    const password = $("password");
    say(status, "");
    if (!passes([[name, required(name)], [password, required(password)]])) return null;
    return [name.value.trim(), password.value];
  }

  const ACCOUNT_FIELDS = { login: $("login"), password: $("password") };

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const given = credentials();
    if (!given) return;
    try { await login(...given); } catch (error) { showError(error, "login", ACCOUNT_FIELDS, status); }
  });

  $("register").addEventListener("click", async () => {
    const given = credentials();
    if (!given) return;
    try {
      await api("POST", "/api/v1/riders", { login: given[0], password: given[1] }, { key: newKey() });
    } catch (error) {
      showError(error, "register", ACCOUNT_FIELDS, status);
      return;
    }
    try {
      await login(...given);
      say(status, Q.t("registered"), "ok");
    } catch (error) {
      say(status, explain(error, "login"), "bad");
    }
  });

  $("link-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const number = $("link-number");
    const code = $("link-code");
    if (!passes([[number, cardNumber(number)], [code, cardCode(code)]])) return;
    try {
      await api("POST", "/api/v1/me/cards", { card: digits(number.value), code: code.value.trim() },
                { auth: true, key: newKey() });
      say(status, Q.t("linked"), "ok");
      await showCards();
    } catch (error) {
      showError(error, "link", { card: number, code }, status);
    }
  });

  // the server revokes every token of the account (POST /api/v1/riders/logout), then the page forgets it
  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/api/v1/riders/logout", {}, auth()); } catch (error) { /* already invalid */ }
    logout();
  });

  function start() {
    const payment = new URLSearchParams(window.location.search).get("payment");
    if (!sessionStorage.getItem(TOKEN)) {
      if (payment) say(status, t("err_session"), "bad");
      return;
    }
    if (!payment) { showCards(); return; }
    window.history.replaceState(null, "", window.location.pathname);  // a reload does not report it again
    showCards().then(() => paymentOutcome(payment, 8));
  }
  start();
})();
