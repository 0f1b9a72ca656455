"""The login pages in a real headless Chromium, on both backend pairs.

The phone is the app API driven from the test (or, for the H5 confirm page, a second
browser context with a phone viewport); the PC is a Chromium page. Screenshots of each
state go to var/screenshots/ (from the memory backend's run; see tests/browser.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.browser import (  # noqa: F401  (fixtures)
    Screenshots,
    base_url,
    browser,
    mobile,
    page_errors,
    pc,
    playwright,
    screenshots,
)
from tests.helpers import PASSWORD, make_user, phone, phone_login

try:
    from playwright.async_api import expect
except ImportError:  # the `playwright` fixture then fails or skips, with the reason
    expect = None

pytestmark = pytest.mark.browser

ACTIVE = re.compile(r"\bactive\b")
QR_IMAGE_LOADED = """() => {
  const img = document.querySelector('#qr-login .qr-image');
  return img.complete && img.naturalWidth > 0;
}"""


async def open_login_page(pc: Any, path: str = "/declare/login") -> str:
    """Open the PC login page; wait for a pending QR; return its session id."""
    await pc.goto(path)
    await expect(pc.locator("#login-dialog")).to_be_visible()
    await expect(pc.get_by_test_id("tab-qr")).to_have_class(ACTIVE)
    box = pc.locator("#qr-login")
    await expect(box).to_have_attribute("data-state", "pending")
    await expect(box).to_have_attribute("data-qr", re.compile(r"^[A-Za-z0-9_-]{22,}$"))
    await pc.wait_for_function(QR_IMAGE_LOADED)
    await expect(box.locator(".qr-overlay")).to_be_hidden()
    return str(await box.get_attribute("data-qr"))


async def expect_enter_button(pc: Any) -> None:
    """After the confirm: the prompt is gone and the header button reads 进入."""
    await expect(pc.get_by_test_id("enter")).to_be_visible()
    await expect(pc.get_by_test_id("enter")).to_have_text("进入")
    await expect(pc.locator("#login-dialog")).to_be_hidden()
    await expect(pc.get_by_test_id("login-button")).to_be_hidden()
    await expect(pc.locator("body")).to_have_attribute("data-logged-in", "true")


async def test_scan_confirm_enter_home_and_logout(
    client: TestClient, pc: Any, screenshots: Screenshots
) -> None:
    await make_user(client)
    auth = await phone_login(client)

    qr_id = await open_login_page(pc)
    await expect(pc.get_by_test_id("enter")).to_be_hidden()
    await expect(pc.locator("#qr-hint")).to_contain_text("扫一扫")
    await screenshots.take(pc, "01-login-qr.png")

    scanned = await phone(client, "scan", qr_id, auth)
    assert scanned.status == 200, await scanned.text()
    box = pc.locator("#qr-login")
    await expect(box).to_have_attribute("data-state", "scanned")
    await expect(box.locator(".qr-title")).to_have_text("扫码成功")
    await expect(box.locator(".qr-detail")).to_have_text("张*三，请在手机上确认")
    await expect(box.locator(".qr-avatar")).to_have_text("张")
    await expect(box).not_to_contain_text("张小三")  # the PC sees the masked name only
    await screenshots.take(pc, "02-scanned.png")

    started = time.monotonic()
    confirmed = await phone(client, "confirm", qr_id, auth)
    assert confirmed.status == 200, await confirmed.text()
    await expect_enter_button(pc)
    flip = time.monotonic() - started
    assert flip < 3, f"the page took {flip:.2f} s to show 进入"
    await expect(pc.get_by_test_id("enter")).to_have_attribute("href", "/declare/")
    await screenshots.take(pc, "03-enter.png")

    await pc.get_by_test_id("enter").click()
    await pc.wait_for_url(re.compile(r"/declare/$"))
    await expect(pc.get_by_test_id("home")).to_contain_text("欢迎，张小三")
    await expect(pc.get_by_test_id("who")).to_have_text("张小三")
    await expect(pc.get_by_test_id("username")).to_have_text("alice")
    await expect(pc.get_by_test_id("logout")).to_be_visible()
    await expect(pc.get_by_test_id("logout")).to_have_text("退出登录")
    await screenshots.take(pc, "04-home.png")

    await pc.get_by_test_id("logout").click()
    await pc.wait_for_url(re.compile(r"/declare/login$"))
    await expect(pc.get_by_test_id("login-button")).to_be_visible()
    await expect(pc.locator("#qr-login")).to_have_attribute("data-state", "pending")
    assert await pc.locator("#qr-login").get_attribute("data-qr") != qr_id

    # The session really ended: the first page sends the browser back to log in.
    await pc.goto("/declare/")
    await pc.wait_for_url(re.compile(r"/declare/login$"))


async def test_login_page_of_a_logged_in_browser_offers_enter(
    client: TestClient, pc: Any
) -> None:
    await make_user(client)
    auth = await phone_login(client)
    qr_id = await open_login_page(pc)
    await phone(client, "scan", qr_id, auth)
    await phone(client, "confirm", qr_id, auth)
    await expect_enter_button(pc)

    await pc.reload()
    await expect(pc.get_by_test_id("enter")).to_be_visible()
    await expect(pc.locator("#login-dialog")).to_be_hidden()
    await expect(pc.locator("#qr-login")).to_have_attribute("data-state", "loading")


async def test_password_tab_logs_in(
    client: TestClient, pc: Any, screenshots: Screenshots
) -> None:
    await make_user(client)
    await open_login_page(pc)

    await pc.get_by_test_id("tab-password").click()
    await expect(pc.get_by_test_id("tab-password")).to_have_class(ACTIVE)
    form = pc.get_by_test_id("password-form")
    await expect(form).to_be_visible()
    await expect(pc.locator("#qr-login")).to_be_hidden()
    await screenshots.take(pc, "05-password-tab.png")

    await form.get_by_label("用户名或手机号").fill("alice")
    await form.get_by_label("密码").fill("not the password")
    await form.locator("button[type=submit]").click()
    await expect(pc.get_by_test_id("form-error")).to_have_text("账号或密码错误。")
    # The page came back on the password tab with the account kept, the password not.
    await expect(form).to_be_visible()
    await expect(pc.get_by_test_id("tab-password")).to_have_class(ACTIVE)
    await expect(form.get_by_label("用户名或手机号")).to_have_value("alice")
    await expect(form.get_by_label("密码")).to_have_value("")
    assert re.search(r"/declare/login$", pc.url)

    await form.get_by_label("密码").fill(PASSWORD)
    await form.locator("button[type=submit]").click()
    await pc.wait_for_url(re.compile(r"/declare/$"))
    await expect(pc.get_by_test_id("who")).to_have_text("张小三")
    await expect(pc.get_by_test_id("logout")).to_be_visible()


def is_new_session(response: Any) -> bool:
    """The page's POST /api/qr/sessions."""
    request = response.request
    return request.method == "POST" and response.url.endswith("/api/qr/sessions")


# The short-lived QR tests read the ids from the page's responses rather than from the
# page, so they do not depend on catching a state that lasts only 1.5 to 2 seconds.


@pytest.mark.parametrize(
    "settings_overrides",
    [{"qr_lifetime": 2.0, "qr_max_rotations": 0}],
    ids=["short-lived"],
)
async def test_expired_qr_offers_refresh(
    client: TestClient, pc: Any, screenshots: Screenshots
) -> None:
    async with pc.expect_response(is_new_session) as created:
        await pc.goto("/declare/login")
    first = await (await created.value).json()
    box = pc.locator("#qr-login")
    await expect(box).to_have_attribute("data-state", "expired")
    await expect(box.locator(".qr-title")).to_have_text("二维码已失效")
    refresh = pc.get_by_test_id("qr-refresh")
    await expect(refresh).to_be_visible()
    await expect(refresh).to_have_text("刷新二维码")
    assert await box.get_attribute("data-qr") == first["id"], "no rotation allowed"
    await pc.wait_for_function(QR_IMAGE_LOADED)
    await screenshots.take(pc, "06-expired.png")

    async with pc.expect_response(is_new_session) as created:
        await refresh.click()
    fresh = await (await created.value).json()
    assert fresh["id"] != first["id"] and fresh["generation"] == 0  # a new chain
    await expect(box).to_have_attribute("data-qr", fresh["id"])
    await expect(box).to_have_attribute("data-state", "pending")
    await expect(refresh).to_be_hidden()
    assert fresh["id"] in str(await box.locator(".qr-image").get_attribute("src"))


@pytest.mark.parametrize(
    "settings_overrides",
    [{"qr_lifetime": 1.5, "qr_max_rotations": 1}],
    ids=["one-rotation"],
)
async def test_qr_rotates_by_itself_then_expires(client: TestClient, pc: Any) -> None:
    async with pc.expect_response(is_new_session) as created:
        await pc.goto("/declare/login")
    first = await (await created.value).json()
    async with pc.expect_response(is_new_session) as created:
        pass  # the page rotates by itself when the first QR expires
    second = await (await created.value).json()
    assert (first["generation"], second["generation"]) == (0, 1)
    box = pc.locator("#qr-login")
    await expect(box).to_have_attribute("data-state", "expired")
    await expect(pc.get_by_test_id("qr-refresh")).to_be_visible()
    assert await box.get_attribute("data-qr") == second["id"]


async def test_cancel_on_the_phone_shows_cancelled(client: TestClient, pc: Any) -> None:
    await make_user(client)
    auth = await phone_login(client)
    qr_id = await open_login_page(pc)
    await phone(client, "scan", qr_id, auth)
    await expect(pc.locator("#qr-login")).to_have_attribute("data-state", "scanned")
    cancelled = await phone(client, "cancel", qr_id, auth)
    assert cancelled.status == 200
    box = pc.locator("#qr-login")
    await expect(box).to_have_attribute("data-state", "cancelled")
    await expect(box.locator(".qr-title")).to_have_text("您已取消此次登录")
    await expect(pc.get_by_test_id("qr-refresh")).to_be_visible()
    await expect(pc.get_by_test_id("enter")).to_be_hidden()

    await pc.get_by_test_id("qr-refresh").click()
    await expect(box).not_to_have_attribute("data-qr", qr_id)
    await expect(box).to_have_attribute("data-state", "pending")


async def test_phone_browser_confirms_on_the_h5_page(
    client: TestClient, pc: Any, mobile: Any, screenshots: Screenshots
) -> None:
    await make_user(client, phone="13800138000")
    qr_id = await open_login_page(pc)

    # A phone camera opens the URL inside the QR; logged out, it asks to log in first.
    await mobile.goto(f"/qr/s/{qr_id}")
    await mobile.wait_for_url(re.compile(r"/m/login\?next=/qr/s/"))
    form = mobile.get_by_test_id("mobile-login")
    await form.get_by_label("用户名或手机号").fill("13800138000")
    await form.get_by_label("密码").fill(PASSWORD)
    await form.locator("button[type=submit]").click()
    await mobile.wait_for_url(re.compile(rf"/qr/s/{re.escape(qr_id)}$"))

    page = mobile.locator("#confirm")
    await expect(page).to_have_attribute("data-state", "scanned")
    await expect(page).to_contain_text("您正在电脑上登录")
    await expect(page.locator('[data-field="ip"]')).to_have_text("127.0.0.1")
    await expect(page.locator('[data-field="browser"]')).not_to_be_empty()
    await expect(mobile.locator("#network-hint")).to_be_hidden()  # same network
    box = pc.locator("#qr-login")
    await expect(box).to_have_attribute("data-state", "scanned")
    await expect(box.locator(".qr-detail")).to_have_text("张*三，请在手机上确认")

    # Decline is as prominent as confirm: same size, same type, both solid buttons.
    confirm, cancel = mobile.get_by_test_id("confirm"), mobile.get_by_test_id("cancel")
    await expect(confirm).to_have_text("确认登录")
    await expect(cancel).to_have_text("取消登录")
    await expect(confirm).to_be_visible()
    await expect(cancel).to_be_visible()
    a, b = await confirm.bounding_box(), await cancel.bounding_box()
    assert a and b
    assert abs(a["width"] - b["width"]) < 1, (a, b)
    assert abs(a["height"] - b["height"]) < 1, (a, b)
    assert abs(a["y"] - b["y"]) < 1, "the two choices sit side by side"
    assert a["height"] >= 44, "touch targets are at least 44 px high"
    style = (
        "el => { const s = getComputedStyle(el); return [s.fontSize, s.fontWeight, "
        "s.color, s.backgroundColor !== 'rgba(0, 0, 0, 0)']; }"
    )
    confirm_style = await confirm.evaluate(style)
    cancel_style = await cancel.evaluate(style)
    assert confirm_style == cancel_style, (confirm_style, cancel_style)
    assert confirm_style[3] is True
    await screenshots.take(mobile, "07-mobile-confirm.png", full_page=True)

    await confirm.click()
    await expect(page).to_have_attribute("data-state", "confirmed")
    await expect(mobile.locator("#result")).to_have_text(
        "已确认登录，请在电脑上继续操作"
    )
    await expect_enter_button(pc)
    await pc.get_by_test_id("enter").click()
    await pc.wait_for_url(re.compile(r"/declare/$"))
    await expect(pc.get_by_test_id("who")).to_have_text("张小三")


async def test_app_download_qr_shows_on_hover(
    client: TestClient, pc: Any, screenshots: Screenshots
) -> None:
    await open_login_page(pc)
    # The dialog can be closed and opened again from the header's 登录 button.
    await pc.locator("#login-close").click()
    await expect(pc.locator("#login-dialog")).to_be_hidden()
    await pc.get_by_test_id("login-button").click()
    await expect(pc.locator("#login-dialog")).to_be_visible()
    await pc.locator("#login-close").click()

    button = pc.get_by_test_id("app-download")
    popup = button.locator(".app-download-qr")
    await expect(button).to_contain_text("下载App")
    await expect(popup).to_be_hidden()
    box = await button.bounding_box()
    assert box and box["x"] > 1280 / 2 and box["y"] > 800 / 2, "sits bottom right"

    await button.hover()
    await expect(popup).to_be_visible()
    await expect(popup).to_contain_text("扫码下载北京通企服版App")
    await popup.locator("img").evaluate(
        "img => img.complete || new Promise(ok => img.addEventListener('load', ok))"
    )
    assert await popup.locator("img").evaluate("img => img.naturalWidth") > 0
    await screenshots.take(pc, "08-app-download.png")

    await pc.mouse.move(10, 10)
    await expect(popup).to_be_hidden()
    await button.focus()  # keyboard users get it too
    await expect(popup).to_be_visible()


@pytest.mark.parametrize("failure", ["refused", "dropped"])
async def test_falls_back_to_long_poll_when_websockets_fail(
    client: TestClient, pc: Any, failure: str
) -> None:
    """refused: the upgrade never succeeds (closed without opening, as behind a proxy
    without WebSocket support); dropped: it opens but closes before any frame."""
    sockets: list[str] = []

    async def break_socket(ws: Any) -> None:
        sockets.append(ws.url)
        if failure == "refused":
            await ws.close(code=1006, reason="")
            return

        async def drop(_message: Any) -> None:
            await ws.close(code=1011, reason="proxy error")

        ws.on_message(drop)

    await pc.route_web_socket(re.compile(r"/ws/qr/"), break_socket)
    polls: list[str] = []
    pc.on("request", lambda r: polls.append(r.url) if "wait=" in r.url else None)

    await make_user(client)
    auth = await phone_login(client)
    qr_id = await open_login_page(pc)
    deadline = time.monotonic() + 10
    while not any(f"/api/qr/sessions/{qr_id}?" in url for url in polls):
        assert time.monotonic() < deadline, f"no long-poll after {len(sockets)} sockets"
        await asyncio.sleep(0.05)
    assert len(sockets) >= 2, sockets

    await phone(client, "scan", qr_id, auth)
    await expect(pc.locator("#qr-login")).to_have_attribute("data-state", "scanned")
    await phone(client, "confirm", qr_id, auth)
    await expect_enter_button(pc)
    tried = len(sockets)
    await pc.get_by_test_id("enter").click()
    await pc.wait_for_url(re.compile(r"/declare/$"))
    await expect(pc.get_by_test_id("who")).to_have_text("张小三")
    assert len(sockets) == tried, "no socket was opened once polling took over"


class SocketRelay:
    """A route for the page's sockets: each goes through to the server, and the relay
    keeps the routes (to drop them from the test) and the frames the server sent."""

    def __init__(self) -> None:
        self.routes: list[Any] = []
        self.frames: list[str] = []

    async def __call__(self, ws: Any) -> None:
        self.routes.append(ws)
        server = ws.connect_to_server()

        def forward(message: Any) -> None:
            self.frames.append(message)
            ws.send(message)

        server.on_message(forward)

    async def wait_for_frames(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.frames) < count:
            assert time.monotonic() < deadline, f"only {self.frames} came through"
            await asyncio.sleep(0.02)


async def test_reconnects_after_a_dropped_socket_and_catches_up(
    client: TestClient, pc: Any
) -> None:
    """The server restarts (1012) and the phone answers while the page is away: the
    page reconnects, gets the snapshot and still logs in."""
    relay = SocketRelay()
    await pc.route_web_socket(re.compile(r"/ws/qr/"), relay)
    await make_user(client)
    auth = await phone_login(client)
    qr_id = await open_login_page(pc)
    await relay.wait_for_frames(1)  # the socket is up and the pending frame arrived
    assert len(relay.routes) == 1

    await relay.routes[0].close(code=1012, reason="restart")
    await phone(client, "scan", qr_id, auth)
    await phone(client, "confirm", qr_id, auth)
    await expect_enter_button(pc)
    assert len(relay.routes) == 2, "one new socket, not a fallback to long-poll"


async def test_a_session_gone_while_away_shows_expired(
    client: TestClient, pc: Any
) -> None:
    """The page comes back (say, after the laptop slept) to a session the broker has
    dropped: the new socket is closed with 4004, and the page offers a new QR."""
    from server.keys import BROKER
    from server.qr.service import key

    relay = SocketRelay()
    await pc.route_web_socket(re.compile(r"/ws/qr/"), relay)
    qr_id = await open_login_page(pc)
    await relay.wait_for_frames(1)
    await client.app[BROKER].delete(key(qr_id))
    await relay.routes[0].close(code=1006, reason="")

    box = pc.locator("#qr-login")
    await expect(box).to_have_attribute("data-state", "expired")
    await expect(pc.get_by_test_id("qr-refresh")).to_be_visible()
    assert len(relay.routes) == 2
    assert '"unknown_session"' in relay.frames[-1]
    await pc.get_by_test_id("qr-refresh").click()
    await expect(box).not_to_have_attribute("data-qr", qr_id)
    await expect(box).to_have_attribute("data-state", "pending")
