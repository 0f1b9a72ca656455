// Account pages: picture codes, one-time code buttons, JSON forms and the session
// list of the personal center. Every write carries the page's CSRF token.
(function () {
  "use strict";

  const csrfToken = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  const messages = {
    bad_captcha: "图形验证码错误，请重新输入",
    captcha_expired: "图形验证码已过期，请重新输入",
    bad_code: "验证码错误",
    code_expired: "验证码已失效，请重新获取",
    code_void: "错误次数过多，请重新获取验证码",
    phone_taken: "该手机号已注册，请直接登录",
    username_taken: "该用户名已被占用，请换一个",
    weak_password: "密码至少8位，且不能是常见密码",
    consent_required: "请阅读并同意用户协议和隐私政策",
    rate_limited: "操作过于频繁，请稍后再试",
    bad_old_password: "密码错误",
    bad_csrf: "页面已过期，请刷新后重试",
    invalid: "请检查填写的内容",
    sms_failed: "短信发送失败，请稍后再试",
    email_failed: "邮件发送失败，请稍后再试",
  };

  async function api(method, url, body) {
    const response = await fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = data.error || {};
      const err = new Error(messages[error.code] || error.message || "操作失败，请重试");
      err.details = error.details || {};
      err.retryAfter = Number(response.headers.get("Retry-After") || 0);
      throw err;
    }
    return data;
  }

  function showError(form, err) {
    const box = form.querySelector(".form-error");
    const ok = form.querySelector(".form-ok");
    if (ok) ok.classList.add("hidden");
    for (const field of form.querySelectorAll(".invalid")) field.classList.remove("invalid");
    for (const name of Object.keys((err && err.details) || {})) {
      const field = form.elements[name.split(".")[0]];
      if (field && field.classList) field.classList.add("invalid");
    }
    if (box) {
      box.textContent = err ? err.message : "";
      box.classList.toggle("hidden", !err);
    }
  }

  // -- picture codes ------------------------------------------------------------

  async function loadCaptcha(box) {
    const data = await api("POST", "/api/captcha");
    box.dataset.captchaId = data.id;
    box.querySelector("img").src = data.image_url;
    const input = box.querySelector("input");
    if (input) input.value = "";
  }

  for (const box of document.querySelectorAll("[data-captcha]")) {
    loadCaptcha(box);
    box.querySelector("img").addEventListener("click", () => loadCaptcha(box));
    box.querySelector(".captcha-refresh").addEventListener("click", () => loadCaptcha(box));
  }

  // -- one-time codes -----------------------------------------------------------

  function countDown(button, seconds) {
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.disabled = true;
    let left = Math.ceil(seconds);
    const tick = () => {
      if (left <= 0) {
        button.disabled = false;
        button.textContent = label;
        return;
      }
      button.textContent = "重新获取(" + left + "s)";
      left -= 1;
      setTimeout(tick, 1000);
    };
    tick();
  }

  for (const button of document.querySelectorAll("[data-send-code]")) {
    button.addEventListener("click", async () => {
      const form = button.closest("form");
      const box = form.querySelector("[data-captcha]");
      const destination = form.elements[button.dataset.destination].value.trim();
      try {
        const sent = await api("POST", "/api/codes", {
          purpose: button.dataset.sendCode,
          destination: destination,
          captcha_id: box.dataset.captchaId,
          captcha_answer: form.elements.captcha_answer.value.trim(),
        });
        showError(form, null);
        const ok = form.querySelector(".form-ok");
        if (ok) {
          ok.textContent = "验证码已发送，请查收";
          ok.classList.remove("hidden");
        }
        countDown(button, sent.resend_in || 60);
      } catch (err) {
        showError(form, err);
        if (err.retryAfter) countDown(button, err.retryAfter);
      }
      loadCaptcha(box); // a picture code is good for one try
    });
  }

  // -- username check -----------------------------------------------------------

  for (const input of document.querySelectorAll("[data-username-check]")) {
    input.addEventListener("change", async () => {
      const url = "/api/auth/username-available?username=" + encodeURIComponent(input.value);
      const data = await fetch(url).then((r) => r.json()).catch(() => ({ available: true }));
      input.classList.toggle("invalid", !data.available);
      const hint = input.parentElement.querySelector(".field-hint");
      if (hint) hint.textContent = data.available ? "用户名可用" : "该用户名已被占用，请换一个";
    });
  }

  // -- JSON forms ---------------------------------------------------------------

  for (const form of document.querySelectorAll("form[data-api]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {};
      for (const field of form.elements) {
        if (!field.name || field.name === "captcha_answer" || field.name === "csrf") continue;
        if (field.type === "checkbox") body[field.name] = field.checked;
        else if (field.type === "radio") { if (field.checked) body[field.name] = field.value; }
        else body[field.name] = field.value;
      }
      const submit = form.querySelector('button[type="submit"]');
      if (submit) submit.disabled = true;
      try {
        const result = await api(form.dataset.method || "POST", form.dataset.api, body);
        showError(form, null);
        if (form.dataset.next !== undefined) {
          window.location.assign(form.dataset.next || result.next || "/");
        } else if (form.hasAttribute("data-reload")) {
          window.location.reload();
        } else if (form.dataset.done) {
          const ok = form.querySelector(".form-ok");
          ok.textContent = form.dataset.done;
          ok.classList.remove("hidden");
          if (!form.hasAttribute("data-keep")) form.reset();
        }
      } catch (err) {
        showError(form, err);
      } finally {
        if (submit) submit.disabled = false;
      }
    });
  }

  // -- sessions -----------------------------------------------------------------

  const table = document.querySelector("[data-sessions]");
  async function loadSessions() {
    const data = await api("GET", "/api/me/sessions");
    const body = table.querySelector("tbody");
    body.textContent = "";
    for (const s of data.sessions) {
      const row = document.createElement("tr");
      const cells = [
        s.kind === "app" ? "App" : "浏览器",
        s.user_agent || "未知设备",
        s.ip,
        new Date(s.created_at * 1000).toLocaleString("zh-CN", { hour12: false }),
      ];
      for (const text of cells) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.appendChild(cell);
      }
      const action = document.createElement("td");
      if (s.current) {
        action.textContent = "当前设备";
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-ghost";
        button.textContent = "下线";
        button.dataset.testid = "revoke";
        button.addEventListener("click", async () => {
          await api("DELETE", "/api/me/sessions/" + encodeURIComponent(s.id));
          loadSessions();
        });
        action.appendChild(button);
      }
      row.appendChild(action);
      body.appendChild(row);
    }
  }
  if (table) loadSessions();

  const everywhere = document.querySelector("[data-logout-all]");
  if (everywhere) {
    everywhere.addEventListener("click", async () => {
      if (!window.confirm("确定退出所有设备（包括本机）吗？")) return;
      await api("POST", "/api/me/logout-all");
      window.location.assign("/declare/login");
    });
  }
})();
