// Declaration pages: attachment upload and delete, submit and withdraw with the
// server's list of problems, and staff forms whose target depends on the button.
// Runs before account.js, which sends the JSON forms.
(function () {
  "use strict";

  const csrfToken = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function call(method, url, body, type) {
    const headers = { "X-CSRF-Token": csrfToken };
    if (type) headers["Content-Type"] = type;
    const response = await fetch(url, { method, body, headers, credentials: "same-origin" });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = data.error || {};
      const err = new Error(error.message || "操作失败，请重试");
      err.details = error.details || {};
      throw err;
    }
    return data;
  }

  function show(box, err) {
    const message = box.querySelector(".form-error");
    message.textContent = err.message;
    message.classList.remove("hidden");
    const list = box.querySelector("[data-problem-list]");
    if (!list) return;
    // The fresh list replaces the one rendered with the page.
    const stale = box.closest("section").querySelector('[data-testid="problems"]');
    if (stale) stale.remove();
    list.textContent = "";
    for (const text of Object.values(err.details || {})) {
      if (typeof text !== "string") continue;
      const item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    }
    list.classList.toggle("hidden", !list.children.length);
  }

  for (const box of document.querySelectorAll("[data-upload]")) {
    const input = box.querySelector('input[type="file"]');
    input.addEventListener("change", async () => {
      const file = input.files[0];
      if (!file) return;
      const url = box.dataset.upload + "?name=" + encodeURIComponent(file.name);
      try {
        await call("POST", url, file, "application/octet-stream");
        window.location.reload();
      } catch (err) {
        show(box, err);
        input.value = "";
      }
    });
  }

  for (const button of document.querySelectorAll("[data-delete-attachment]")) {
    button.addEventListener("click", async () => {
      if (!window.confirm("确定删除这个附件吗？")) return;
      await call("DELETE", button.dataset.deleteAttachment).catch((err) => alert(err.message));
      window.location.reload();
    });
  }

  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", async () => {
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      button.disabled = true;
      try {
        await call("POST", button.dataset.action, "{}", "application/json");
        window.location.reload();
      } catch (err) {
        show(button.closest(".submit-box"), err);
      } finally {
        button.disabled = false;
      }
    });
  }

  for (const button of document.querySelectorAll("[data-review]")) {
    button.addEventListener("click", () => {
      const form = button.closest("form");
      form.dataset.api = form.dataset.api.replace(/[a-z]+$/, button.dataset.review);
    });
  }

  for (const input of document.querySelectorAll("[data-guide-slug]")) {
    input.addEventListener("input", () => {
      input.closest("form").dataset.api = "/api/staff/guides/" + encodeURIComponent(input.value.trim());
    });
  }
})();
