// Card page: anonymous balance check and the rider's own cards, all through the rider JSON API (/api/v1).
"use strict";
(function () {
  const Q = window.Qala;
  const TOKEN = "qala_rider_token";
  const LOGIN = "qala_rider_login";
  const result = document.getElementById("balance-result");
  const status = document.getElementById("account-status");

  function digits(value) { return value.replace(/\D/g, ""); }

  function explain(error) {
    if (error.status === 404) return Q.t("card_not_found");
    if (error.status === 429) return Q.t("too_many");
    if (error.status === 401) return Q.t("login_failed");
    return error.message || Q.t("error");
  }

  document.getElementById("balance-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    result.className = "result";
    try {
      const body = await Q.postJSON("/api/v1/cards/balance", {
        card: digits(document.getElementById("card-number").value), code: document.getElementById("card-code").value.trim(),
      });
      result.replaceChildren(Q.el("strong", { textContent: Q.t("balance") + ": " + Q.money(body.balance) }),
                             " · " + body.masked + " · " + Q.t("status_" + body.status));
      result.classList.add("ok");
    } catch (error) {
      result.textContent = explain(error);
      result.classList.add("bad");
    }
  });

  function auth() { return { Authorization: "Bearer " + sessionStorage.getItem(TOKEN) }; }

  function cardItem(card) {
    const button = Q.el("button", { type: "button", className: "secondary", textContent: Q.t("history") });
    button.addEventListener("click", () => showHistory(card));
    return Q.el("li", { className: "card-item" }, [
      Q.el("span", { className: "masked", textContent: card.masked }), " ",
      Q.el("strong", { className: "balance", textContent: Q.money(card.balance) }), " ",
      Q.el("span", { className: "meta", textContent: Q.t("status_" + card.status) }), " ", button,
    ]);
  }

  async function showCards() {
    document.getElementById("logged-out").hidden = true;
    document.getElementById("logged-in").hidden = false;
    document.getElementById("who").textContent = sessionStorage.getItem(LOGIN) || "";
    try {
      const body = await Q.getJSON("/api/v1/me/cards", { headers: auth() });
      const list = document.getElementById("my-cards");
      list.replaceChildren(...body.cards.map(cardItem));
      if (!body.cards.length) list.append(Q.el("li", { textContent: Q.t("no_cards") }));
    } catch (error) {
      if (error.status === 401) { logout(); return; }
      status.textContent = explain(error);
    }
  }

  // the rider's own clock: history times are stored in UTC
  const stamp = new Intl.DateTimeFormat(Q.lang, { dateStyle: "short", timeStyle: "short" });
  function when(iso) { return iso ? stamp.format(new Date(iso)) : ""; }

  function label(prefix, value) {
    const key = prefix + value;
    const text = Q.t(key);
    return text === key ? value : text;
  }

  async function showHistory(card) {
    try {
      const body = await Q.getJSON("/api/v1/cards/" + card.card_id + "/history?limit=50", { headers: auth() });
      const rows = [];
      body.taps.forEach((tap) => rows.push([tap.at, Q.t("route") + " " + (tap.route_id || "—") + " · " +
        label("outcome_", tap.outcome) + (tap.reason ? " (" + tap.reason + ")" : ""), ""]));
      body.payments.forEach((p) => rows.push([p.at, label("kind_", p.kind) + (p.reason ? " · " + p.reason : ""),
                                              Q.money(p.amount)]));
      rows.sort((a, b) => Date.parse(b[0]) - Date.parse(a[0]));
      const tbody = document.getElementById("history-rows");
      tbody.replaceChildren(...rows.map((r) => Q.el("tr", {}, [
        Q.el("td", { textContent: when(r[0]) }), Q.el("td", { textContent: r[1] }), Q.el("td", { textContent: r[2] })])));
      if (!rows.length) tbody.append(Q.el("tr", {}, [Q.el("td", { colSpan: 3, textContent: Q.t("no_history") })]));
      document.getElementById("history-title").textContent = Q.t("history") + " · " + card.masked;
      document.getElementById("history").hidden = false;
    } catch (error) {
      status.textContent = explain(error);
    }
  }

  async function login(name, password) {
    const body = await Q.postJSON("/api/v1/riders/login", { login: name, password });
    sessionStorage.setItem(TOKEN, body.token);
    sessionStorage.setItem(LOGIN, name);
    status.textContent = "";
    await showCards();
  }

  function logout() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(LOGIN);
    document.getElementById("logged-out").hidden = false;
    document.getElementById("logged-in").hidden = true;
    document.getElementById("history").hidden = true;
  }

  function credentials() {
    return [document.getElementById("login").value.trim(), document.getElementById("password").value];
  }

  document.getElementById("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try { await login(...credentials()); } catch (error) { status.textContent = explain(error); }
  });

  document.getElementById("register").addEventListener("click", async () => {
    const [name, password] = credentials();
    if (!document.getElementById("login-form").reportValidity()) return;
    try {
      await Q.postJSON("/api/v1/riders", { login: name, password });
      await login(name, password);
      status.textContent = Q.t("registered");
    } catch (error) {
      status.textContent = error.message || Q.t("error");
    }
  });

  document.getElementById("link-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await Q.postJSON("/api/v1/me/cards", { card: digits(document.getElementById("link-number").value),
                                             code: document.getElementById("link-code").value.trim() }, auth());
      status.textContent = Q.t("linked");
      await showCards();
    } catch (error) {
      status.textContent = explain(error);
    }
  });

  // the server revokes every token of the account (POST /api/v1/riders/logout), then the page forgets it
  document.getElementById("logout").addEventListener("click", async () => {
    try { await Q.postJSON("/api/v1/riders/logout", {}, auth()); } catch (error) { /* already invalid */ }
    logout();
  });
  if (sessionStorage.getItem(TOKEN)) showCards();
})();
