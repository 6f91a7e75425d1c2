// The checkout page: one POST /orders for every supplier box, the cart emptied of what was
// ordered, and a refusal shown in the box it concerns (else above all boxes).
// Uses window.Orders from app.js (loaded before this file; both are deferred).
"use strict";
(function () {
  const form = document.getElementById("checkout-form");
  if (!form || !window.Orders) return;
  const Orders = window.Orders;
  const boxes = () => [...form.querySelectorAll('[data-testid="supplier-form"]')];
  const ADDRESS_FIELDS = ["name", "phone", "region", "address"];

  function linesOf(root) {
    return [...root.querySelectorAll('[data-testid="checkout-item"]')].map((row) => ({
      sku: row.dataset.sku,
      qty: parseInt(row.dataset.qty, 10),
    }));
  }

  // The body of POST /orders (SubmitIn): the lines shown, the coins, one group per box.
  // An address form left entirely empty sends no address: the API then uses the default
  // address, or refuses with "a delivery address is required".
  Orders.builders.checkout = function (f) {
    const groups = boxes().map((box) => {
      const group = { supplier_id: box.dataset.supplierId, remark: "" };
      const remark = box.querySelector('[name="remark"]');
      if (remark) group.remark = remark.value.trim();
      const fieldset = box.querySelector('[data-testid="address-form"]');
      if (fieldset) {
        const value = (name) => (fieldset.querySelector(`[name="${name}"]`)?.value || "").trim();
        if (ADDRESS_FIELDS.some((name) => value(name) !== "")) {
          const address = {};
          ADDRESS_FIELDS.forEach((name) => (address[name] = value(name)));
          for (const name of ["lat", "lon"]) {
            const v = value(name);
            if (v !== "") address[name] = Number(v);
          }
          group.address = address;
        }
      }
      return group;
    });
    const coins = (f.querySelector('[name="coins"]')?.value || "").trim();
    return { lines: linesOf(f), coins: coins === "" ? "0.00" : coins, groups };
  };

  // --- coins: what they take off ----------------------------------------------------------

  const totals = form.querySelector('[data-testid="checkout-totals"]');
  const coinsInput = form.querySelector('[data-testid="coins-input"]');
  const money = (cents) => "¥" + (Math.max(cents, 0) / 100).toFixed(2);

  function showCoins() {
    const total = parseInt(totals.dataset.totalCents, 10) || 0;
    const coins = Math.round((parseFloat(coinsInput.value) || 0) * 100);
    const saving = Math.max(0, Math.min(coins, total));
    form.querySelector('[data-testid="coins-saving"]').textContent = "−" + money(saving);
    form.querySelector('[data-testid="checkout-payable"]').textContent = money(total - saving);
  }
  if (totals && coinsInput) {
    coinsInput.addEventListener("input", showCoins);
    showCoins();
  }

  // --- refusals: in the box they name ----------------------------------------------------

  // The API's messages name what they refuse: "only 0 of 'tea-1' in stock", "supplier
  // 'tea-house' ships physical goods: ...", or a field "groups.1.address.phone: ...".
  function boxFor(message) {
    const all = boxes();
    const field = /\bgroups\.(\d+)\./.exec(message);
    if (field && all[Number(field[1])]) return all[Number(field[1])];
    for (const match of message.matchAll(/'([^']+)'/g)) {
      const name = match[1];
      const box = all.find(
        (b) =>
          b.dataset.supplierId === name ||
          [...b.querySelectorAll('[data-testid="checkout-item"]')].some((r) => r.dataset.sku === name),
      );
      if (box) return box;
    }
    return null;
  }

  function clearErrors() {
    form.querySelectorAll('[data-testid="error-message"]').forEach((slot) => {
      slot.textContent = "";
      slot.hidden = true;
    });
  }

  function showRefusal(message) {
    const box = boxFor(message);
    const slot = (box || form).querySelector('[data-testid="error-message"]');
    slot.textContent = message;
    slot.hidden = false;
    slot.scrollIntoView({ block: "nearest" });
  }

  // --- submit ----------------------------------------------------------------------------------

  let key = null; // kept only while the outcome of a send is unknown (same body → same order)
  let lastBody = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector('[data-testid="submit-all"]');
    const body = Orders.builders.checkout(form);
    const text = JSON.stringify(body);
    if (!key || text !== lastBody) key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
    lastBody = text;
    clearErrors();
    button.disabled = true;
    let placed;
    try {
      placed = await Orders.api("POST", "/orders", body, key);
    } catch (err) {
      // A refusal placed nothing and reserved nothing; a lost answer may be retried as is.
      if (err.status && err.status < 500) key = null;
      showRefusal(err.message);
      button.disabled = false;
      return;
    }
    try {
      // Take what was ordered out of the cart (keyed by the order: a retry takes it once).
      await Orders.api("POST", "/cart/remove", { lines: body.lines }, "ordered-" + placed.order_no);
    } catch (err) {
      // The order stands; the cart keeps the lines and the customer can remove them.
    }
    location.href = "/ui/orders/" + encodeURIComponent(placed.order_no);
  });
})();
