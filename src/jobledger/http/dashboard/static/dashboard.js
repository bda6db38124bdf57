// jobledger dashboard: live updates. The page's live part (#live) names the event stream
// (data-events), which job ids concern it (data-match: the job, or the run and its task
// launches) and how to fetch it again (data-fragment). On an event that concerns it, the
// part is fetched from the server and swapped in. Without JavaScript the pages still work.
"use strict";

(function () {
  const live = document.getElementById("live");
  if (!live || !window.EventSource || !live.dataset.events) {
    return;
  }
  const match = live.dataset.match || "";
  const exact = live.dataset.exact === "1";
  const separator = window.location.search ? "&" : "?";
  const fragmentUrl = window.location.pathname + window.location.search + separator + live.dataset.fragment;
  let timer = null;
  let fetching = false;
  let again = false;

  function concerns(jobId) {
    if (!match) {
      return true;
    }
    return jobId === match || (!exact && jobId.startsWith(match + "/"));
  }

  function whatIs(node) {
    return node.tagName + " " + (node.getAttribute("href") || node.textContent);
  }

  async function refresh() {
    timer = null;
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      const response = await fetch(fragmentUrl, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.redirected || response.status === 401 || response.status === 403) {
        // Signed out meanwhile (the session expired or ended elsewhere), or no longer
        // permitted: load the page again, which says so, rather than the sign-in page
        // inside this one.
        source.close();
        window.location.reload();
      } else if (response.ok) {
        const html = await response.text();
        const said = Array.from(live.querySelectorAll("[data-announce]"), (node) => node.textContent);
        // Keep what the reader opened (details) open across the swap.
        const open = Array.from(live.querySelectorAll("details[open] > summary"), (node) => node.textContent);
        // Keep the keyboard's place too: the same link or summary has the focus after the swap.
        const focused = live.contains(document.activeElement) ? whatIs(document.activeElement) : null;
        live.innerHTML = html;
        live.querySelectorAll("details > summary").forEach((node) => {
          if (open.includes(node.textContent)) {
            node.parentElement.open = true;
          }
        });
        if (focused !== null) {
          const same = Array.from(live.querySelectorAll("a, summary")).find((node) => whatIs(node) === focused);
          if (same) {
            same.focus({ preventScroll: true });
          }
        }
        live.dataset.refreshed = String(Number(live.dataset.refreshed || "0") + 1);
        // Tell screen readers when a status changed (not every refresh: that would be noise).
        const changed = Array.from(live.querySelectorAll("[data-announce]"))
          .filter((node, index) => node.textContent !== said[index])
          .map((node) => node.dataset.announce + ": " + node.textContent);
        const announce = document.getElementById("announce");
        if (announce && changed.length) {
          announce.textContent = changed.join(". ");
        }
      }
    } catch (error) {
      // The next event tries again.
    } finally {
      fetching = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }

  function schedule() {
    if (timer === null) {
      timer = window.setTimeout(refresh, 250);
    }
  }

  const source = new EventSource(live.dataset.events);
  const kinds = ["JobStarted", "JobUpdated", "JobCompleted", "JobFailed", "JobCanceled"];
  kinds.forEach((kind) => {
    source.addEventListener(kind, (event) => {
      let jobId = "";
      try {
        jobId = JSON.parse(event.data).JobId || "";
      } catch (error) {
        return;
      }
      if (concerns(jobId)) {
        schedule();
      }
    });
  });
  // A stream the server refused (a sign-in page in its place) is not tried again: see why.
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      schedule();
    }
  });
  window.addEventListener("pagehide", () => source.close());
})();
