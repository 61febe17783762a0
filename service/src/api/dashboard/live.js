// tminus dashboard: every element with data-live is replaced, once a
// second, by the HTML fragment its URL answers (the running fan-outs).
for (const el of document.querySelectorAll("[data-live]")) {
  setInterval(async () => {
    try {
      const r = await fetch(el.dataset.live, { credentials: "same-origin", redirect: "error" });
      if (r.ok) el.innerHTML = await r.text();
    } catch (_) {
      // Offline for a moment, or logged out: keep the last figures.
    }
  }, 1000);
}
