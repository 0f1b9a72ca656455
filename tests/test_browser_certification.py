"""Enterprise certification in a real headless Chromium, against the 一证通 stand-in
running as its own process: certify and see 已认证; a second user meets
该企业已被其他用户绑定, files an unbind request; staff approve; the second user's bell
lights up live."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.keys import AUTH
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
from tests.conftest import free_port
from tests.helpers import PASSWORD
from tests.identity_helpers import Account, new_account, register
from tests.processes import run_server_command

try:
    from playwright.async_api import expect
except ImportError:
    expect = None

pytestmark = pytest.mark.browser

STANDIN_PORT = free_port()


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`qrlogin standin-identity` as its own process, accepting any local port."""
    folder = tmp_path_factory.mktemp("identity")
    with run_server_command(
        "standin-identity",
        "--data",
        str(folder / "yzt.db"),
        "--redirect-uri",
        "http://127.0.0.1:",
        log_path=folder / "standin.log",
        port=STANDIN_PORT,
    ) as base:
        yield base


@pytest.fixture
def settings_overrides(identity: str) -> dict[str, Any]:
    return {"identity_issuer": identity, "identity_standin": True}


async def log_in(page: Any, account: str) -> None:
    """The 账号密码登录 form, then the personal center."""
    await page.goto("/declare/login?tab=password&next=/center/")
    form = page.get_by_test_id("password-form")
    await form.locator('input[name="account"]').fill(account)
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator('button[type="submit"]').click()
    await page.wait_for_url("**/center/")


async def certify(page: Any, enterprise: Account) -> None:
    """Click 未认证 and log in at 一证通 as the enterprise."""
    await page.get_by_test_id("cert-start").click()
    await page.wait_for_url(re.compile(rf"http://127.0.0.1:{STANDIN_PORT}/.*"))
    await expect(page.locator("h1")).to_have_text("法人用户登录")
    await page.locator('input[name="login_name"]').fill(enterprise.login_name)
    await page.locator('input[name="password"]').fill(enterprise.password)
    await page.locator('button[type="submit"]').click()
    await page.wait_for_url(re.compile(r".*/center/.*"))


async def test_certify_conflict_unbind_review_and_live_bell(
    client: TestClient,
    identity: str,
    browser: Any,
    base_url: str,
    pc: Any,
    screenshots: Screenshots,
    page_errors: Any,
) -> None:
    enterprise = new_account()
    status, _, body = await register(identity, enterprise)
    assert status in (200, 303), body
    auth = client.app[AUTH]
    await auth.create_user(username="alice", password=PASSWORD, phone="13800000001")
    await auth.create_user(username="bob_b", password=PASSWORD, phone="13800000002")
    await auth.create_user(username="staffer", password=PASSWORD, is_staff=True)

    # Alice certifies: 已认证 with the enterprise's name.
    await log_in(pc, "alice")
    await certify(pc, enterprise)
    await expect(pc.get_by_test_id("cert-status")).to_have_text("已认证")
    await expect(pc.get_by_test_id("cert-enterprise")).to_have_text(
        enterprise.enterprise_name
    )
    await screenshots.take(pc, "20-certified.png")

    # Bob tries the same enterprise in his own browser.
    context = await browser.new_context(
        base_url=base_url, locale="zh-CN", viewport={"width": 1280, "height": 800}
    )
    bob = page_errors.watch(await context.new_page())
    await log_in(bob, "bob_b")
    await certify(bob, enterprise)
    await expect(bob.get_by_test_id("cert-error")).to_contain_text(
        "该企业已被其他用户绑定"
    )
    await screenshots.take(bob, "21-enterprise-taken.png")
    await bob.get_by_test_id("unbind-link").click()
    form = bob.get_by_test_id("unbind-form")
    await expect(form.get_by_test_id("uscc")).to_have_value(enterprise.uscc)
    await form.get_by_test_id("unbind-submit").click()
    await expect(bob.get_by_test_id("my-requests")).to_contain_text("审核中")
    await screenshots.take(bob, "22-unbind-request.png", full_page=True)
    await expect(bob.get_by_test_id("bell-count")).to_be_hidden()

    # Staff approve in a third browser; Bob's bell lights up without a reload.
    staff_context = await browser.new_context(
        base_url=base_url, locale="zh-CN", viewport={"width": 1280, "height": 800}
    )
    staff = page_errors.watch(await staff_context.new_page())
    await log_in(staff, "staffer")
    await staff.goto("/staff/")
    queue = staff.get_by_test_id("staff-queue")
    await expect(queue).to_contain_text(enterprise.enterprise_name)
    await expect(queue).to_contain_text("alice")
    await screenshots.take(staff, "23-staff-queue.png")
    await queue.locator("[data-approve]").first.click()
    await expect(queue).to_contain_text("暂无待审核的申请")

    await expect(bob.get_by_test_id("bell-count")).to_have_text("1")
    await expect(bob.get_by_test_id("toast")).to_contain_text("解绑申请已通过")
    await bob.evaluate("window.scrollTo(0, 0)")
    await screenshots.take(bob, "24-bell-lit.png")

    # Bob can certify now; Alice is an individual again.
    await bob.goto("/center/")
    await certify(bob, enterprise)
    await expect(bob.get_by_test_id("cert-status")).to_have_text("已认证")
    await pc.goto("/center/")
    await expect(pc.get_by_test_id("cert-start")).to_have_text("未认证")
    await context.close()
    await staff_context.close()
