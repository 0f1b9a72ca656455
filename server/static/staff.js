// The staff queue: approve or reject an unbind request, then reload the queue.
(function () {
  "use strict";

  const csrfToken = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function decide(article, url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
      body: JSON.stringify(body || {}),
    });
    if (response.ok) {
      window.location.reload();
      return;
    }
    const data = await response.json().catch(() => ({}));
    const box = article.querySelector(".form-error");
    box.textContent = (data.error && data.error.message) || "操作失败";
    box.classList.remove("hidden");
  }

  for (const article of document.querySelectorAll("[data-request]")) {
    const id = article.dataset.request;
    const base = "/api/staff/unbind-requests/" + id;
    article.querySelector("[data-approve]").addEventListener("click", () => decide(article, base + "/approve"));
    article.querySelector("[data-reject]").addEventListener("click", () => {
      const reason = article.querySelector('input[name="reason"]').value;
      decide(article, base + "/reject", { reason: reason });
    });
  }
})();
