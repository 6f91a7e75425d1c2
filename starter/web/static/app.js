// The pages' one script: API calls with the session cookie + CSRF header, refusals shown
// where they happen, live regions refreshed on server-sent events, pay countdowns.
// Plain JavaScript, no build step, nothing loaded from elsewhere.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const newKey = () =>
    (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));

  class ApiRefusal extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // One call of the HTTP API, exactly as any other client makes it.
  async function api(method, url, body, idempotencyKey) {
    const headers = { "X-CSRF-Token": csrf(), Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiRefusal(0, "network", document.body.dataset.offline || "The server cannot be reached; try again.");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const e = (data && data.error) || {};
      throw new ApiRefusal(response.status, e.code || "error", e.message || response.statusText);
    }
    return data;
  }

  // Where a refusal is shown: the form's own error slot, else its scope's, else the page's.
  function errorSlot(el) {
    const scope = el.closest("[data-error-scope]") || el.closest("form") || document;
    return (
      scope.querySelector('[data-testid="error-message"]') ||
      document.querySelector('[data-testid="error-message"]')
    );
  }

  // Refusals on screen, by the part of the page they belong to: a live refresh re-renders
  // that part, and the message must survive it (the refusal changed nothing on the server,
  // so the fresh rendering does not know of it).
  const shownErrors = new Map();
  function slotKey(slot) {
    const scope = slot.closest("[data-error-scope]") || slot.closest("form");
    if (!scope) return "page";
    const d = scope.dataset;
    return d.formKey || scope.id || d.api || d.supplierOrderId || d.afterSaleId || "scope";
  }

  function showError(el, message) {
    const slot = errorSlot(el);
    if (!slot) return alert(message);
    slot.textContent = message;
    slot.hidden = false;
    shownErrors.set(slotKey(slot), message);
    // A live refresh may have swapped the form out while its command was on its way:
    // show the refusal in the part of the page that replaced it.
    if (!slot.isConnected) restoreErrors(document);
    else slot.scrollIntoView({ block: "nearest" });
  }

  function clearError(el) {
    const slot = errorSlot(el);
    if (slot) {
      slot.textContent = "";
      slot.hidden = true;
      shownErrors.delete(slotKey(slot));
    }
  }

  function restoreErrors(root) {
    if (!shownErrors.size) return;
    root.querySelectorAll('[data-testid="error-message"]').forEach((slot) => {
      const message = shownErrors.get(slotKey(slot));
      if (message && slot.hidden) {
        slot.textContent = message;
        slot.hidden = false;
      }
    });
  }

  function toast(message) {
    const t = document.getElementById("toast");
    if (!t || !message) return;
    t.textContent = message;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (t.hidden = true), 6000);
  }

  // Form fields → JSON body. `data-type="int|number|bool"` on an input converts it;
  // names with dots build nested objects (address.name → {address: {name}}); empty
  // optional fields are left out.
  function formBody(form) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.name === "csrf_token") continue;
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) continue;
      let value = el.value;
      if (value === "" && !el.required) continue;
      const type = el.dataset.type;
      if (type === "int") value = parseInt(value, 10);
      else if (type === "number") value = Number(value);
      else if (type === "bool") value = el.checked;
      let target = body;
      const parts = el.name.split(".");
      for (const part of parts.slice(0, -1)) target = target[part] = target[part] || {};
      target[parts[parts.length - 1]] = value;
    }
    return body;
  }

  // Builders for forms whose body is not a flat object (registered by name).
  const builders = {};

  function fill(template, data) {
    return template.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent((data && data[k]) ?? ""));
  }

  // <form data-api="POST /path" [data-body="builder"] [data-then="refresh|reload|go:/ui/x/{key}"]
  //       [data-confirm="question"] [data-done="message"]>
  async function submitApiForm(form, submitter) {
    const [method, url] = form.dataset.api.split(" ");
    if (form.dataset.confirm && !confirm(form.dataset.confirm)) return;
    let body;
    try {
      body = form.dataset.body ? builders[form.dataset.body](form) : formBody(form);
    } catch (err) {
      return showError(form, err.message);
    }
    if (method === "POST" && form.dataset.nobody !== undefined) body = undefined;
    // One key per rendering of the form: a double click or a retry is one command.
    form.dataset.key = form.dataset.key || newKey();
    const buttons = form.querySelectorAll("button, input[type=submit]");
    buttons.forEach((b) => (b.disabled = true));
    clearError(form);
    try {
      const data = await api(method, url, body, form.dataset.key);
      delete form.dataset.key;
      toast(form.dataset.done);
      const then = form.dataset.then || "refresh";
      if (then.startsWith("go:")) return (location.href = fill(then.slice(3), data));
      if (then === "reload") return location.reload();
      await refreshAll();
    } catch (err) {
      // A refusal changes nothing: the same key may be sent again after fixing the input,
      // but a different body needs a new key (the API refuses a reused key with new data).
      delete form.dataset.key;
      showError(form, err.message);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    event.preventDefault();
    submitApiForm(form, event.submitter);
  });

  // --- live regions -----------------------------------------------------------------------

  // <section data-live-src="/ui/orders/123?fragment=boxes"> is re-rendered by the server
  // and swapped in whenever the live stream says something changed.
  let refreshing = null;
  let again = false;
  async function refreshAll() {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        again = false;
        const regions = document.querySelectorAll("[data-live-src]");
        await Promise.all([...regions].map(refreshRegion));
      } while (again);
    })();
    try {
      await refreshing;
    } finally {
      refreshing = null;
    }
  }

  // A press (mouse, pen or touch) inside a region is a click on its way: a swap between its
  // down and its up would drop it (down and up on different elements make no click), and a
  // pressed button has taken the focus from the field the check below protects.
  let pressedIn = null;
  let released = Promise.resolve();
  let release = () => {};
  document.addEventListener(
    "pointerdown",
    (event) => {
      pressedIn = event.target;
      released = new Promise((resolve) => (release = resolve));
    },
    true,
  );
  const lift = () => {
    if (!pressedIn) return;
    pressedIn = null;
    setTimeout(release, 0); // after the click (and its submit) that this press produces
  };
  document.addEventListener("pointerup", lift, true);
  document.addEventListener("pointercancel", lift, true);

  async function refreshRegion(region) {
    const response = await fetch(region.dataset.liveSrc, {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    });
    if (!response.ok) return;
    const html = await response.text();
    if (pressedIn && region.contains(pressedIn)) {
      // Bounded: a press whose release never reaches the page does not freeze the region.
      await Promise.race([released, new Promise((resolve) => setTimeout(resolve, 2000))]);
    }
    // Keep what the user is typing: a region with a focused, edited field waits.
    const active = document.activeElement;
    if (active && region.contains(active) && active.matches("input, textarea, select") && active.value) {
      region.dataset.stale = "1";
      return;
    }
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const fresh = template.content.firstElementChild;
    if (fresh && fresh.dataset.liveSrc) {
      region.replaceWith(fresh);
      restoreErrors(fresh);
      startCountdowns(fresh);
    } else {
      region.innerHTML = html;
      restoreErrors(region);
      startCountdowns(region);
    }
    document.dispatchEvent(new CustomEvent("orders:refreshed"));
  }

  function connectLive() {
    const topics = document.body.dataset.liveTopics;
    if (!topics || !window.EventSource) return;
    // EventSource reconnects by itself and sends Last-Event-ID; the server replays what
    // this page missed, so nothing is lost across a reconnect.
    // The page was read up to change `live-since`: the stream starts right after it.
    let url = "/ui/live?topics=" + encodeURIComponent(topics);
    if (document.body.dataset.liveSince) url += "&last_event_id=" + document.body.dataset.liveSince;
    const source = new EventSource(url);
    source.addEventListener("change", (event) => {
      let detail = {};
      try {
        detail = JSON.parse(event.data);
      } catch (err) {}
      if (detail.notice) toast(detail.notice);
      refreshAll();
    });
    window.addEventListener("pagehide", () => source.close());
  }

  // --- pay countdown ----------------------------------------------------------------------

  const expiredChecks = new Map(); // deadline → refreshes asked for since it passed
  function startCountdowns(root) {
    root.querySelectorAll('[data-testid="pay-countdown"][data-deadline]').forEach((el) => {
      if (el.dataset.ticking) return;
      el.dataset.ticking = "1";
      const deadline = Date.parse(el.dataset.deadline);
      const label = el.querySelector(".clock") || el;
      const tick = () => {
        if (!el.isConnected) return clearInterval(timer);
        const left = Math.max(0, Math.floor((deadline - Date.now()) / 1000));
        el.dataset.seconds = String(left);
        const m = Math.floor(left / 60);
        const s = left % 60;
        label.textContent = `${m}:${String(s).padStart(2, "0")}`;
        if (left === 0) {
          // The workflow's timer closes the order; the stream says so, and until it does
          // the page asks again every second for a while.
          const checks = (expiredChecks.get(el.dataset.deadline) || 0) + 1;
          expiredChecks.set(el.dataset.deadline, checks);
          if (checks <= 30) refreshAll();
          else clearInterval(timer);
        }
      };
      const timer = setInterval(tick, 1000);
      tick();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    startCountdowns(document);
    connectLive();
  });

  window.Orders = { api, builders, showError, clearError, refreshAll, toast, formBody };
})();
