// The PC login page's QR panel: create a session, watch it over a WebSocket (or
// long-poll when sockets fail), redeem the ticket once the phone confirms, and turn
// the login button into 进入.
(function () {
  "use strict";

  const root = document.getElementById("qr-login");
  if (!root) return;

  const dialog = document.getElementById("login-dialog");
  const loginButton = document.getElementById("login-button");
  const enterButton = document.getElementById("enter-button");
  const image = root.querySelector(".qr-image");
  const title = root.querySelector(".qr-title");
  const detail = root.querySelector(".qr-detail");
  const avatar = root.querySelector(".qr-avatar");
  const refresh = root.querySelector(".qr-refresh");
  const hint = document.getElementById("qr-hint");
  const maxRotations = Number(root.dataset.maxRotations || 0);
  const RECONNECT_CAP_MS = 10000;
  const csrfToken = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  let session = null; // the response of POST /api/qr/sessions
  let version = 0;
  let socket = null;
  let usePolling = !("WebSocket" in window);
  let socketFailures = 0;
  let attempt = 0;
  let finished = false;

  // -- dialog and tabs ----------------------------------------------------------

  if (loginButton) {
    loginButton.addEventListener("click", () => dialog.classList.remove("hidden"));
  }
  document.getElementById("login-close").addEventListener("click", () => {
    dialog.classList.add("hidden");
  });
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".tab")) {
        other.classList.toggle("active", other === tab);
      }
      for (const panel of document.querySelectorAll(".panel")) {
        panel.classList.toggle("hidden", panel.dataset.panel !== tab.dataset.tab);
      }
    });
  }

  // -- rendering ----------------------------------------------------------------

  function show(state, heading, text, canRefresh) {
    root.dataset.state = state;
    title.textContent = heading || "";
    detail.textContent = text || "";
    refresh.classList.toggle("hidden", !canRefresh);
  }

  function render(frame) {
    avatar.textContent = "";
    avatar.style.backgroundImage = "";
    if (frame.user) {
      if (frame.user.avatar) {
        avatar.style.backgroundImage = "url(" + JSON.stringify(frame.user.avatar) + ")";
      } else {
        avatar.textContent = (frame.user.name || "?").slice(0, 1);
      }
    }
    switch (frame.state) {
      case "pending":
        show("pending", "", "", false);
        break;
      case "scanned":
        show("scanned", "扫码成功", (frame.user ? frame.user.name + "，" : "") + "请在手机上确认", false);
        break;
      case "confirmed":
        show("confirmed", "已确认", "正在登录…", false);
        break;
      case "consumed":
        show("consumed", "登录成功", "", false);
        break;
      case "cancelled":
        show("cancelled", "您已取消此次登录", "可刷新二维码后重新扫码", true);
        break;
      case "expired":
        show("expired", "二维码已失效", "请点击刷新后重新扫码", true);
        break;
    }
  }

  // -- the session --------------------------------------------------------------

  async function create(rotate) {
    const body = rotate && session
      ? { rotate_from: session.id, watch_token: session.watch_token }
      : {};
    stopWatching();
    let response;
    try {
      response = await fetch("/api/qr/sessions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (err) {
      show("error", "网络连接失败", "请检查网络后刷新", true);
      return;
    }
    if (response.status === 409) {
      render({ state: "expired" });
      return;
    }
    if (!response.ok) {
      const text = response.status === 429 ? "请求过于频繁，请稍后再试" : "请稍后刷新重试";
      show("error", "暂时无法获取二维码", text, true);
      return;
    }
    session = await response.json();
    version = 0;
    finished = false;
    root.dataset.qr = session.id;
    image.src = session.image_url;
    const devLink = document.getElementById("qr-dev-link");
    if (devLink) devLink.href = session.qr_url; // development: be the phone in a tab
    render({ state: "pending" });
    watch();
  }

  function watch() {
    if (usePolling) poll(session);
    else connect(session);
  }

  function stopWatching() {
    if (socket) {
      const old = socket;
      socket = null;
      old.close();
    }
  }

  function handle(current, frame) {
    if (current !== session || frame.type !== "state" || frame.version <= version) return;
    version = frame.version;
    render(frame);
    if (frame.state === "confirmed" && frame.ticket) {
      redeem(current, frame.ticket);
    } else if (frame.state === "expired") {
      finished = true;
      const generation = current.generation || 0;
      if (generation < maxRotations) create(true);
    } else if (frame.state === "cancelled" || frame.state === "consumed") {
      finished = true;
    }
  }

  function backoff() {
    // Full jitter between 0.5 s and a cap that doubles with each failure.
    const cap = Math.min(RECONNECT_CAP_MS, 1000 * Math.pow(2, attempt));
    attempt += 1;
    return 500 + Math.random() * Math.max(0, cap - 500);
  }

  function connect(current) {
    const sock = new WebSocket(current.ws_url);
    let received = false; // a socket that never delivered a frame counts as failed
    socket = sock;
    sock.onopen = () => {
      sock.send(JSON.stringify({ type: "auth", token: current.watch_token, version: version }));
    };
    sock.onmessage = (event) => {
      received = true;
      attempt = 0;
      socketFailures = 0;
      let frame;
      try { frame = JSON.parse(event.data); } catch (err) { return; }
      handle(current, frame);
    };
    sock.onclose = (event) => {
      if (socket !== sock || current !== session) return;
      socket = null;
      if (finished || event.code === 1000) return;
      if (event.code === 4001 || event.code === 4004) {
        // The session is gone (or no longer ours): offer a new QR, as long-poll does.
        finished = true;
        render({ state: "expired" });
        return;
      }
      if (!received) socketFailures += 1;
      if (socketFailures >= 2) {
        usePolling = true;
        poll(current);
        return;
      }
      setTimeout(() => { if (current === session && !finished) connect(current); }, backoff());
    };
  }

  async function poll(current) {
    while (current === session && !finished) {
      const url = "/api/qr/sessions/" + current.id + "?wait=25&since=" + version;
      try {
        const response = await fetch(url, {
          headers: { Authorization: "Bearer " + current.watch_token },
        });
        if (response.status === 401 || response.status === 404) {
          render({ state: "expired" });
          return;
        }
        if (!response.ok) throw new Error("status " + response.status);
        attempt = 0;
        handle(current, await response.json());
      } catch (err) {
        await new Promise((resolve) => setTimeout(resolve, backoff()));
      }
    }
  }

  async function redeem(current, ticket) {
    const response = await fetch("/api/qr/sessions/" + current.id + "/redeem", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: "Bearer " + current.watch_token,
      },
      body: JSON.stringify({ ticket: ticket }),
      credentials: "same-origin",
    });
    if (!response.ok) {
      show("error", "登录未完成", "请刷新二维码后重试", true);
      return;
    }
    finished = true;
    stopWatching();
    const result = await response.json();
    render({ state: "consumed" });
    // The prompt goes away and the login button becomes 进入.
    dialog.classList.add("hidden");
    hint.classList.add("hidden");
    if (loginButton) loginButton.classList.add("hidden");
    enterButton.href = root.dataset.next || result.next || "/declare/";
    enterButton.classList.remove("hidden");
    document.body.dataset.loggedIn = "true";
  }

  refresh.addEventListener("click", () => {
    session = null;
    create(false);
  });

  if (!dialog.classList.contains("hidden")) create(false);
  else if (loginButton) {
    loginButton.addEventListener("click", () => { if (!session) create(false); }, { once: true });
  }
})();
