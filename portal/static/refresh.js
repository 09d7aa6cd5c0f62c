// Keeps a page region current by fetching its server-rendered fragment every
// data-refresh-seconds. A static file, so the Content-Security-Policy needs no inline script.
"use strict";

(() => {
  const region = document.querySelector("[data-refresh-url]");
  if (!region) {
    return;
  }
  const url = region.dataset.refreshUrl;
  const seconds = Math.max(5, parseInt(region.dataset.refreshSeconds, 10) || 30);
  let timer = null;

  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, seconds * 1000);
  };

  async function refresh() {
    if (document.hidden) {
      return; // resumed by visibilitychange
    }
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "text/html" },
      });
      if (response.status === 401 || response.status === 404) {
        // Signed out, or the link is gone: the full page knows what to show.
        window.location.reload();
        return;
      }
      if (!response.ok) {
        throw new Error(`refresh failed: ${response.status}`);
      }
      region.innerHTML = await response.text();
      region.classList.remove("stale");
    } catch (error) {
      region.classList.add("stale");
    }
    schedule();
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      refresh();
    }
  });
  schedule();
})();
