// The customer's order pages, on top of app.js (window.Orders): waiting for a payment to
// land, "buy again", the after-sales quantity limit per item, and open disclosure boxes that
// stay open when a live region is re-rendered. Plain JavaScript, nothing loaded from elsewhere.
"use strict";
(function () {
  const Orders = window.Orders;
  if (!Orders) return;

  const orderStatus = () => document.querySelector('[data-testid="order-status"]')?.dataset.status;

  function refusalShown(form) {
    if (!form.isConnected) return false;
    const scope = form.closest("[data-error-scope]") || form;
    const slot = scope.querySelector('[data-testid="error-message"]');
    return Boolean(slot && !slot.hidden && slot.textContent);
  }

  // <form data-await-change>: the command (a payment) is applied by the order's workflow a
  // moment after the API accepted it, so the page asks again until the order's status moves
  // (the live stream says so too, when it is connected).
  document.addEventListener(
    "submit",
    (event) => {
      const form = event.target;
      if (!(form instanceof HTMLFormElement) || form.dataset.awaitChange === undefined) return;
      const before = orderStatus();
      let tries = 0;
      const timer = setInterval(() => {
        tries += 1;
        if (orderStatus() !== before || tries > 30 || refusalShown(form)) {
          clearInterval(timer);
          return;
        }
        Orders.refreshAll();
      }, 1000);
    },
    true,
  );

  // <form data-buy-again="/orders/{no}/buy-again">: one distinct item → its product in the
  // shop; several → they were added to the cart.
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.buyAgain) return;
    event.preventDefault();
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    Orders.clearError(form);
    form.dataset.key = form.dataset.key || String(Date.now()) + Math.random().toString(16).slice(2);
    try {
      const data = await Orders.api("POST", form.dataset.buyAgain, undefined, form.dataset.key);
      if (data && data.product && data.product.active) {
        location.href = "/ui/shop?q=" + encodeURIComponent(data.product.sku);
      } else if (data && data.added && data.added.length) {
        location.href = "/ui/cart";
      } else {
        delete form.dataset.key;
        Orders.showError(form, form.dataset.nothing || "Nothing could be added.");
      }
    } catch (err) {
      delete form.dataset.key;
      Orders.showError(form, err.message);
    } finally {
      if (button) button.disabled = false;
    }
  });

  // The after-sales form: the quantity is capped by what is left of the chosen item.
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (!(select instanceof HTMLSelectElement) || !select.dataset.qtyInput) return;
    const input = document.getElementById(select.dataset.qtyInput);
    const max = select.selectedOptions[0]?.dataset.max;
    if (input && max) {
      input.max = max;
      if (Number(input.value) > Number(max)) input.value = max;
    }
  });

  // <details id=...> the user opened stay open across re-renders of their region; sending
  // the form inside one closes it (a refusal leaves the region, and the box, as it was).
  const open = new Set();
  document.addEventListener(
    "toggle",
    (event) => {
      const d = event.target;
      if (!(d instanceof HTMLDetailsElement) || !d.id) return;
      if (d.open) open.add(d.id);
      else open.delete(d.id);
    },
    true,
  );
  document.addEventListener(
    "submit",
    (event) => {
      const d = event.target instanceof Element ? event.target.closest("details[id]") : null;
      if (d) open.delete(d.id);
    },
    true,
  );
  document.addEventListener("orders:refreshed", () => {
    for (const id of open) {
      const d = document.getElementById(id);
      if (d && !d.open) d.open = true;
    }
  });
})();
