"""Accounts in a real headless Chromium: register, code login, password login, lockout,
and the personal center; screenshots of each page go to docs/screenshots/."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.keys import BROKER
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
from tests.helpers import PASSWORD, make_user, outbox_code

try:
    from playwright.async_api import expect
except ImportError:
    expect = None

pytestmark = pytest.mark.browser

PHONE = "13912345678"


async def solve_captcha_on(client: TestClient, page: Any, form: Any) -> None:
    """Type the captcha's text, as a person reads it off the picture."""
    box = form.locator("[data-captcha]")
    await expect(box).to_have_attribute("data-captcha-id", re.compile(r".+"))
    captcha_id = await box.get_attribute("data-captcha-id")
    answer = await client.app[BROKER].get(f"captcha:{captcha_id}")
    await form.locator('input[name="captcha_answer"]').fill(answer or "")


async def get_code(client: TestClient, page: Any, form: Any, destination: str) -> str:
    """Solve the captcha, press 获取验证码, and read the code from the outbox."""
    await solve_captcha_on(client, page, form)
    await form.get_by_test_id("send-code").click()
    await expect(form.get_by_test_id("send-code")).to_have_text(re.compile("重新获取"))
    code = await outbox_code(client, destination)
    assert code is not None
    return code


# One phone gets a register code, then a login code at once: no 60 s wait here.
@pytest.mark.parametrize("settings_overrides", [{"code_resend_after": 0}])
async def test_register_then_log_in_with_a_code_and_a_password(
    client: TestClient, pc: Any, screenshots: Screenshots
) -> None:
    await pc.goto("/register")
    form = pc.get_by_test_id("register-form")
    await form.get_by_test_id("phone").fill(PHONE)
    code = await get_code(client, pc, form, PHONE)
    await form.get_by_test_id("code").fill(code)
    await form.get_by_test_id("username").fill("newbie")
    await form.get_by_test_id("password").fill(PASSWORD)
    await screenshots.take(pc, "10-register.png", full_page=True)
    await form.get_by_test_id("register-submit").click()
    await expect(form.locator(".form-error")).to_contain_text("协议")  # consent needed
    await form.get_by_test_id("agree").check()
    await form.get_by_test_id("register-submit").click()
    await pc.wait_for_url("**/center/")
    await expect(pc.get_by_test_id("username")).to_have_text("newbie")
    await expect(pc.get_by_test_id("cert-start")).to_have_text("未认证")
    await screenshots.take(pc, "11-center.png", full_page=True)

    await pc.get_by_test_id("logout").click()
    await pc.goto("/declare/login?tab=code")
    form = pc.get_by_test_id("code-login-form")
    await form.get_by_test_id("destination").fill(PHONE)
    code = await get_code(client, pc, form, PHONE)
    await form.get_by_test_id("code").fill(code)
    await screenshots.take(pc, "12-code-login.png")
    await form.locator('button[type="submit"]').click()
    await pc.wait_for_url("**/declare/")
    await expect(pc.get_by_test_id("who")).to_have_text("newbie")

    await pc.get_by_test_id("logout").click()
    await pc.goto("/declare/login?tab=password")
    password_form = pc.get_by_test_id("password-form")
    await password_form.locator('input[name="account"]').fill(PHONE)
    await password_form.locator('input[name="password"]').fill(PASSWORD)
    await password_form.locator('button[type="submit"]').click()
    await pc.wait_for_url("**/declare/")


async def test_five_wrong_passwords_lock_the_account(
    client: TestClient, pc: Any, screenshots: Screenshots
) -> None:
    await make_user(client)
    await pc.goto("/declare/login?tab=password")
    for attempt in range(5):
        form = pc.get_by_test_id("password-form")
        await form.locator('input[name="account"]').fill("alice")
        await form.locator('input[name="password"]').fill("not the password")
        await form.locator('button[type="submit"]').click()
        error = pc.get_by_test_id("form-error")
        expected = "锁定" if attempt == 4 else "账号或密码错误"
        await expect(error).to_contain_text(expected)
    await screenshots.take(pc, "13-locked.png")
    form = pc.get_by_test_id("password-form")
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator('button[type="submit"]').click()
    await expect(pc.get_by_test_id("form-error")).to_contain_text("锁定")


async def test_forgot_password_resets_and_logs_nobody_in(
    client: TestClient, pc: Any, screenshots: Screenshots
) -> None:
    await make_user(client, phone=PHONE)
    await pc.goto("/declare/login")
    await pc.get_by_test_id("forgot-link").click()
    form = pc.get_by_test_id("forgot-form")
    await form.get_by_test_id("phone").fill(PHONE)
    code = await get_code(client, pc, form, PHONE)
    await form.get_by_test_id("code").fill(code)
    await form.get_by_test_id("password").fill("a brand new secret")
    await form.locator('button[type="submit"]').click()
    await expect(form.locator(".form-ok")).to_contain_text("密码已重置")
    await screenshots.take(pc, "14-forgot.png")
    await pc.goto("/center/")
    await pc.wait_for_url(re.compile(r".*/declare/login.*"))
