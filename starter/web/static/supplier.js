// The supplier pages' few extras on top of app.js: the bodies of the ship and receiver
// forms, a notice when a new paid order arrives, and what a live refresh must not take
// away (a refusal's message, what was typed, an open section, keyboard focus).
// Everything else (API calls, refusals, live regions) is app.js.
"use strict";
(function () {
  const Orders = window.Orders;
  if (!Orders) return;

  const field = (form, name) => form.elements.namedItem(name);
  const text = (form, name) => (field(form, name)?.value || "").trim();

  // POST /supplier/orders/{id}/shipments {carrier, tracking_no, method, items:[{item_id, qty}]}
  // One line per item with a quantity; lines left at 0 (or empty) are not sent. Anything
  // else (too many, not a whole number, a mix of physical and virtual) is the API's to refuse.
  Orders.builders.ship = (form) => {
    const items = [];
    form.querySelectorAll('[data-testid="ship-qty"]').forEach((input) => {
      const raw = input.value.trim();
      if (raw === "" || Number(raw) === 0) return;
      const qty = Number(raw);
      items.push({ item_id: input.dataset.itemId, qty: Number.isFinite(qty) ? qty : raw });
    });
    if (!items.length) throw new Error(form.dataset.empty);
    return {
      carrier: text(form, "carrier"),
      tracking_no: text(form, "tracking_no"),
      method: field(form, "method").value,
      items,
    };
  };

  // PATCH /supplier/orders/{id}/receiver (an address). The map position of the old address
  // only travels with it while region and address stay the same (a new street needs new
  // coordinates, which the page does not have: distance and ETA are then not shown).
  Orders.builders.receiver = (form) => {
    const body = {};
    for (const name of ["name", "phone", "region", "address"]) body[name] = text(form, name);
    const same = body.region === form.dataset.region && body.address === form.dataset.address;
    if (same && form.dataset.lat !== "" && form.dataset.lon !== "") {
      body.lat = Number(form.dataset.lat);
      body.lon = Number(form.dataset.lon);
    }
    return body;
  };

  // --- a live refresh keeps what the supplier was doing ---------------------------------
  //
  // app.js swaps a whole live region for its fresh rendering whenever the order changes
  // (a carrier scan, the customer's reminder...). Each form (or after-sales box) carries
  // `data-form-key`; when a region is swapped, the fresh copy of each keyed part gets
  // back the refusal shown in it, the values typed into it, its open <details> and the
  // focus. Not for a form whose command has just succeeded (its buttons are still
  // disabled while app.js refreshes): that one starts afresh.

  // The control that has the focus (a swapped-out one stays remembered: removing an
  // element takes its focus away without the user having moved on).
  let focused = null;
  document.addEventListener("focusin", (event) => (focused = event.target));
  document.addEventListener("focusout", (event) => {
    if (event.target === focused && event.target.isConnected && !event.relatedTarget) focused = null;
  });

  const SLOT = '[data-testid="error-message"]';
  const byId = (root, id) => root.querySelector("#" + CSS.escape(id));
  const keyed = (root, key) => root.querySelector(`[data-form-key="${CSS.escape(key)}"]`);

  function edited(el) {
    if (el instanceof HTMLSelectElement) {
      return [...el.options].some((o) => o.selected !== o.defaultSelected);
    }
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    return el.value !== el.defaultValue;
  }

  function copyPart(part, twin) {
    const slot = part.querySelector(SLOT);
    const freshSlot = twin.querySelector(SLOT);
    if (slot && freshSlot && !slot.hidden && slot.textContent) {
      freshSlot.textContent = slot.textContent;
      freshSlot.hidden = false;
    }
    part.querySelectorAll("input[id], select[id], textarea[id]").forEach((el) => {
      const again = byId(twin, el.id);
      if (!again || !edited(el)) return;
      // A default the server changed (e.g. fewer left to ship) wins over an old edit.
      if (again instanceof HTMLSelectElement || again.defaultValue === el.defaultValue) {
        if (again.type === "checkbox" || again.type === "radio") again.checked = el.checked;
        else again.value = el.value;
      }
    });
  }

  // A command still on its way when its form was swapped out: if it is refused, app.js
  // shows the refusal in the old (detached) form; bring it, and the typed values, over.
  function followRefusal(part) {
    const slot = part.querySelector(SLOT);
    if (!slot) return;
    const key = part.dataset.formKey;
    const watch = new MutationObserver(() => {
      if (slot.hidden || !slot.textContent) return;
      watch.disconnect();
      const twin = keyed(document, key);
      if (twin) copyPart(part, twin);
    });
    watch.observe(slot, { attributes: true, childList: true, characterData: true, subtree: true });
    setTimeout(() => watch.disconnect(), 120000);
  }

  function carryOver(old, fresh) {
    old.querySelectorAll("[data-form-key]").forEach((part) => {
      const twin = keyed(fresh, part.dataset.formKey);
      const busy = [...part.querySelectorAll("button")].some((b) => b.disabled);
      if (busy) followRefusal(part); // succeeded: the fresh form is the answer; refused: see above
      else if (twin) copyPart(part, twin);
    });
    old.querySelectorAll("details[id][open]").forEach((d) => {
      const again = byId(fresh, d.id);
      const done = [...d.querySelectorAll("button")].some((b) => b.disabled);
      if (again && !done) again.open = true; // a section whose command went through closes
    });
    if (focused && focused.id && old.contains(focused)) {
      const again = byId(fresh, focused.id);
      if (again && !again.disabled) again.focus({ preventScroll: true });
    }
  }

  new MutationObserver((records) => {
    for (const record of records) {
      record.removedNodes.forEach((old) => {
        if (!(old instanceof HTMLElement) || !old.dataset.liveSrc) return;
        const fresh = [...record.addedNodes].find(
          (n) => n instanceof HTMLElement && n.dataset.liveSrc !== undefined
        );
        if (fresh) carryOver(old, fresh);
      });
    }
  }).observe(document.body, { childList: true, subtree: true });

  // --- the inbox: a notice when an order paid since the page opened comes in -------------

  const inbox = () => document.querySelector('[data-testid="supplier-inbox"]');
  let knownNew = inbox() ? Number(inbox().dataset.newCount || 0) : 0;

  document.addEventListener("orders:refreshed", () => {
    const region = inbox();
    if (!region) return;
    const count = Number(region.dataset.newCount || 0);
    if (count > knownNew) Orders.toast(region.dataset.newNotice);
    knownNew = count;
  });
})();
