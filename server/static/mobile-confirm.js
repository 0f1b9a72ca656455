// The phone browser's confirm page: scan on load, then confirm or cancel.
(function () {
  "use strict";

  const page = document.getElementById("confirm");
  const csrfToken = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const qr = page.dataset.qr;
  const lead = document.getElementById("confirm-lead");
  const requester = document.getElementById("requester");
  const hint = document.getElementById("network-hint");
  const choices = document.getElementById("choices");
  const result = document.getElementById("result");

  async function call(action) {
    const response = await fetch("/api/app/qr/" + encodeURIComponent(qr) + "/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
      body: "{}",
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = body.error || {};
      throw new Error(messages[error.code] || error.message || "操作失败，请重试");
    }
    return body;
  }

  const messages = {
    expired: "二维码已失效，请在电脑上刷新后重新扫码",
    already_scanned: "该二维码已被其他账号扫描",
    already_consumed: "该登录已完成",
    cancelled: "该登录已取消",
    unknown_session: "二维码无效",
    rate_limited: "操作过于频繁，请稍后再试",
  };

  function finish(text, state) {
    page.dataset.state = state;
    choices.classList.add("hidden");
    result.textContent = text;
    result.classList.remove("hidden");
  }

  async function scan() {
    try {
      const details = await call("scan");
      const r = details.requester;
      requester.querySelector('[data-field="ip"]').textContent = r.ip;
      requester.querySelector('[data-field="browser"]').textContent = r.browser;
      requester.querySelector('[data-field="os"]').textContent = r.os;
      requester.querySelector('[data-field="time"]').textContent =
        new Date(r.requested_at * 1000).toLocaleString("zh-CN", { hour12: false });
      requester.classList.remove("hidden");
      hint.classList.toggle("hidden", r.same_network);
      lead.textContent = "您正在电脑上登录北京市高精尖产业发展资金申报平台";
      choices.classList.remove("hidden");
      page.dataset.state = "scanned";
    } catch (err) {
      lead.textContent = "";
      finish(err.message, "error");
    }
  }

  for (const button of choices.querySelectorAll("button")) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      for (const b of choices.querySelectorAll("button")) b.disabled = true;
      try {
        await call(action);
        finish(action === "confirm" ? "已确认登录，请在电脑上继续操作" : "已取消登录", action + "ed");
      } catch (err) {
        finish(err.message, "error");
      }
    });
  }

  scan();
})();
