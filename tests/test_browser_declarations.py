"""The guide's path in a real headless Chromium: portal home → 一体化申报平台 → the
program → its notice → the 申报入口 guide → the short link to the declaration
platform's QR login, confirmed from the phone; then a declaration drafted, submitted,
returned by staff, fixed and approved, with each notification arriving live."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.keys import ZONE
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
from tests.helpers import PASSWORD, phone, phone_login
from tests.zone_helpers import certified, staff_member

try:
    from playwright.async_api import expect
except ImportError:
    expect = None

pytestmark = pytest.mark.browser

# The smallest PDF a sniffer accepts: the signature comes first.
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_guide_path_qr_login_and_declaration_review(
    client: TestClient, pc: Any, screenshots: Screenshots
) -> None:
    seeded = await client.app[ZONE].seed()
    assert seeded
    _, _ = await certified(client, "alice")
    _, staff = await staff_member(client)

    # The portal, logged in with the password, down to the guide.
    await pc.goto("/declare/login?tab=password&next=/portal/")
    form = pc.get_by_test_id("password-form")
    await form.locator('input[name="account"]').fill("alice")
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator('button[type="submit"]').click()
    await pc.wait_for_url("**/portal/")
    await pc.get_by_test_id("zone-entry").click()
    await expect(pc.get_by_test_id("program-list")).to_contain_text("高精尖")
    await screenshots.take(pc, "30-zone.png")
    programs = pc.get_by_test_id("program-list")
    await programs.get_by_role("link", name=re.compile("高精尖")).first.click()
    await pc.get_by_test_id("notice-link").click()
    await expect(pc.get_by_test_id("notice")).to_be_visible()
    await screenshots.take(pc, "31-notice.png")
    await pc.get_by_test_id("entry-link").click()
    await expect(pc.get_by_test_id("guide")).to_be_visible()
    await screenshots.take(pc, "32-guide.png")
    address = await pc.get_by_test_id("platform-address").get_attribute("href")
    assert address and "/short/" in address

    # The declaration platform is its own site: arrive there logged out.
    await pc.context.clear_cookies()
    await pc.goto(address)
    await pc.wait_for_url("**/declare/login**")
    box = pc.locator("#qr-login")
    await expect(box).to_have_attribute("data-state", "pending")
    qr_id = await box.get_attribute("data-qr")
    app = await phone_login(client, "alice")
    assert (await phone(client, "scan", str(qr_id), app)).status == 200
    assert (await phone(client, "confirm", str(qr_id), app)).status == 200
    await expect(pc.get_by_test_id("enter")).to_be_visible()
    await pc.get_by_test_id("enter").click()
    await pc.wait_for_url("**/declare/")

    # Draft, attach, submit.
    await (
        pc.get_by_test_id("new-declaration")
        .locator('button[type="submit"]')
        .first.click()
    )
    await pc.wait_for_url(re.compile(r".*/declare/declarations/\d+"))
    declaration_id = pc.url.rstrip("/").rsplit("/", 1)[1]
    form = pc.get_by_test_id("declaration-form")
    await form.locator('input[name="project_name"]').fill("智能制造产线升级")
    await form.locator('select[name="category"]').select_option(index=1)
    await form.locator('input[name="total_investment"]').fill("1200")
    await form.locator('input[name="amount_requested"]').fill("300")
    await form.locator('input[name="contact_name"]').fill("张三")
    await form.locator('input[name="contact_phone"]').fill("13800001111")
    await form.locator('textarea[name="description"]').fill(
        "对现有产线进行智能化改造。"
    )
    await pc.get_by_test_id("save").click()
    await expect(form.locator(".form-ok")).to_contain_text("已保存")
    await pc.get_by_test_id("file").set_input_files(
        files=[
            {"name": "可行性研究报告.pdf", "mimeType": "application/pdf", "buffer": PDF}
        ]
    )
    await expect(pc.get_by_test_id("attachments")).to_contain_text("可行性研究报告.pdf")
    await pc.get_by_test_id("submit").click()
    await expect(pc.get_by_test_id("status")).to_have_text("已提交")
    await screenshots.take(pc, "33-submitted.png", full_page=True)

    # Staff accept and return it; the enterprise hears of it live.
    url = f"/api/staff/declarations/{declaration_id}"
    assert (await client.post(f"{url}/accept", headers=staff)).status == 200
    await expect(pc.get_by_test_id("toast").last).to_contain_text("已受理")
    returned = await client.post(
        f"{url}/return", headers=staff, json={"comment": "请补充申请资金的测算依据"}
    )
    assert returned.status == 200, await returned.text()
    await expect(pc.get_by_test_id("toast").last).to_contain_text("退回修改")
    await expect(pc.get_by_test_id("bell-count")).to_be_visible()
    await pc.reload()
    await expect(pc.get_by_test_id("status")).to_have_text("退回修改")
    await expect(pc.get_by_test_id("history")).to_contain_text("测算依据")

    # Fixed and submitted again; staff approve.
    form = pc.get_by_test_id("declaration-form")
    await form.locator('textarea[name="description"]').fill(
        "对现有产线进行智能化改造。申请资金按设备投资的25%测算。"
    )
    await pc.get_by_test_id("save").click()
    await expect(form.locator(".form-ok")).to_contain_text("已保存")
    await pc.get_by_test_id("submit").click()
    await expect(pc.get_by_test_id("status")).to_have_text("已提交")
    assert (await client.post(f"{url}/accept", headers=staff)).status == 200
    assert (await client.post(f"{url}/approve", headers=staff)).status == 200
    await expect(pc.get_by_test_id("toast").last).to_contain_text("审核通过")
    await pc.reload()
    await expect(pc.get_by_test_id("status")).to_have_text("审核通过")
    await screenshots.take(pc, "34-approved.png", full_page=True)
