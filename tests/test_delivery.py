"""Codes reach people: email through a real SMTP server, SMS through an HTTP gateway."""

from __future__ import annotations

import asyncio
import email
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller

from server.keys import AUTH
from tests.conftest import free_port
from tests.helpers import PASSWORD, assert_error, csrf, request_code

SMTP_PORT = free_port()
GATEWAY_PORT = free_port()


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=SMTP_PORT)
    await asyncio.to_thread(controller.start)
    try:
        yield handler
    finally:
        await asyncio.to_thread(controller.stop)


class Gateway:
    """A local SMS gateway stand-in: records messages, or fails when told to."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail = False
        self.tokens: list[str] = []

    async def send(self, request: web.Request) -> web.Response:
        self.tokens.append(request.headers.get("Authorization", ""))
        if self.fail:
            return web.json_response({"error": "down"}, status=500)
        self.received.append(await request.json())
        return web.json_response({"ok": True})


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    stand_in = Gateway()
    app = web.Application()
    app.router.add_post("/send", stand_in.send)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", GATEWAY_PORT).start()
    try:
        yield stand_in
    finally:
        await runner.cleanup()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": SMTP_PORT,
        "smtp_starttls": False,
        "smtp_sender": "noreply@qrlogin.test",
        "sms_gateway_url": f"http://127.0.0.1:{GATEWAY_PORT}/send",
        "sms_gateway_token": "gateway-secret",
    }


async def test_email_code_arrives_over_smtp(client: TestClient, inbox: Inbox) -> None:
    await client.app[AUTH].create_user(
        username="mailer", password=PASSWORD, email="mailer@example.org"
    )
    assert (await request_code(client, "login", "mailer@example.org")).status == 200
    for _ in range(50):
        if inbox.messages:
            break
        await asyncio.sleep(0.05)
    message = inbox.messages[0]
    assert message["To"] == "mailer@example.org"
    assert message["From"] == "noreply@qrlogin.test"
    body = message.get_payload(decode=True).decode()
    code = re.search(r"\d{6}", body).group(0)  # type: ignore[union-attr]
    response = await client.post(
        "/api/auth/code-login",
        headers=csrf(client),
        json={"destination": "mailer@example.org", "code": code},
    )
    assert response.status == 200


async def test_sms_code_goes_through_the_gateway(
    client: TestClient, gateway: Gateway
) -> None:
    assert (await request_code(client, "register", "13912345678")).status == 200
    assert gateway.tokens == ["Bearer gateway-secret"]
    sent = gateway.received[0]
    assert sent["to"] == "13912345678" and re.search(r"\d{6}", sent["text"])


async def test_gateway_failure_is_a_clear_error_and_allows_a_retry(
    client: TestClient,
    gateway: Gateway,
) -> None:
    gateway.fail = True
    failed = await request_code(client, "register", "13912345678")
    assert failed.status == 503
    assert_error(await failed.json(), "sms_failed")
    gateway.fail = False
    retried = await request_code(client, "register", "13912345678")
    assert retried.status == 200


async def test_outbox_page_is_development_only(client: TestClient) -> None:
    assert (await client.get("/dev/outbox")).status == 200
