// The bell: one socket per page to /ws, the unread count, a toast for each new
// notification, and the list page's mark-as-read buttons.
(function () {
  "use strict";

  if (window.__notifyStarted) return;
  window.__notifyStarted = true;

  const csrfToken = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const bell = document.querySelector("[data-bell]");
  const count = bell ? bell.querySelector(".bell-count") : null;
  let unread = 0;
  let lastId = 0;
  let attempt = 0;

  function showCount() {
    if (!count) return;
    count.textContent = unread > 99 ? "99+" : String(unread);
    count.classList.toggle("hidden", unread === 0);
    if (bell) bell.dataset.unread = String(unread);
  }

  function toast(note) {
    const box = document.createElement("div");
    box.className = "toast";
    box.setAttribute("role", "status");
    box.dataset.testid = "toast";
    const title = document.createElement("strong");
    title.textContent = note.title;
    const body = document.createElement("p");
    body.textContent = note.body;
    box.append(title, body);
    if (note.link) box.addEventListener("click", () => window.location.assign(note.link));
    document.body.appendChild(box);
    setTimeout(() => box.remove(), 8000);
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + window.location.host + "/ws");
    let ready = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", last_id: lastId }));
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "notification") {
        lastId = Math.max(lastId, frame.notification.id);
        if (ready) {
          if (!frame.notification.read) unread += 1;
          toast(frame.notification);
          showCount();
        }
      } else if (frame.type === "ready") {
        ready = true;
        attempt = 0;
        unread = frame.unread;
        lastId = Math.max(lastId, frame.last_id);
        showCount();
      } else if (frame.type === "read") {
        if (frame.notification === "all") unread = 0;
        else unread = Math.max(0, unread - 1);
        showCount();
      }
    };
    ws.onclose = (event) => {
      if (event.code === 4001) return; // not logged in
      const cap = Math.min(15000, 1000 * Math.pow(2, attempt));
      attempt += 1;
      setTimeout(connect, 500 + Math.random() * Math.max(0, cap - 500));
    };
  }

  async function post(url) {
    await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken },
    });
  }

  for (const button of document.querySelectorAll("[data-read]")) {
    button.addEventListener("click", async () => {
      await post("/api/notifications/" + button.dataset.read + "/read");
      const item = button.closest(".note");
      item.classList.replace("unread", "read");
      button.remove();
    });
  }
  const all = document.querySelector("[data-read-all]");
  if (all) {
    all.addEventListener("click", async () => {
      await post("/api/notifications/read-all");
      for (const item of document.querySelectorAll(".note.unread")) item.classList.replace("unread", "read");
      for (const button of document.querySelectorAll("[data-read]")) button.remove();
    });
  }
  for (const time of document.querySelectorAll("[data-time]")) {
    time.textContent = new Date(Number(time.dataset.time) * 1000).toLocaleString("zh-CN", { hour12: false });
  }

  if (bell || document.querySelector("[data-read-all]")) connect();
})();
