// The sandbox payment provider's checkout (SANDBOX — no real money): shows the pending top-up and settles it with
// Approve or Decline through the API's sandbox "pay" endpoint, whose signed webhook credits the card (or does not),
// then hands the rider back to the card page (/card?payment=<intent id>), as a real provider's page would.
"use strict";
(function () {
  const Q = window.Qala;
  const WORDS = JSON.parse(document.getElementById("card-strings").textContent);
  const box = document.getElementById("checkout");
  const note = document.getElementById("checkout-status");
  const buttons = [document.getElementById("approve"), document.getElementById("decline")];
  const token = sessionStorage.getItem("qala_rider_token");

  function t(key) { return key in WORDS ? WORDS[key] : Q.t(key); }

  function headers() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return { Authorization: "Bearer " + token,
             "Idempotency-Key": Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("") };
  }

  function explain(error) {
    if (error.status === 401) return t("sandbox_login");
    if (error.status === 404) return t("sandbox_no_intent");
    if (error.status === 409) return t("sandbox_done");
    return t("err_network");
  }

  async function settle(outcome) {
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await Q.postJSON(box.dataset.payPath, { outcome }, headers());
      window.location.assign(box.dataset.return);
    } catch (error) {
      note.textContent = explain(error);
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  async function load() {
    if (!token) { note.textContent = t("sandbox_login"); return; }
    try {
      const intent = await Q.getJSON("/api/v1/payment-intents/" + encodeURIComponent(box.dataset.intentId),
                                     { headers: { Authorization: "Bearer " + token } });
      document.getElementById("checkout-amount").textContent = Q.money(intent.amount);
      if (intent.status !== "pending") { note.textContent = t("sandbox_done"); return; }
      buttons.forEach((b) => { b.disabled = false; });
    } catch (error) {
      note.textContent = explain(error);
    }
  }

  buttons[0].addEventListener("click", () => settle("succeeded"));
  buttons[1].addEventListener("click", () => settle("failed"));
  load();
})();
