"""Small steps the tests repeat: make a user, log the phone in, open a QR session."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient

from server.keys import AUTH

PASSWORD = "correct horse battery"


async def make_user(
    client: TestClient,
    username: str = "alice",
    phone: str | None = None,
    display_name: str = "张小三",
) -> int:
    """Create an account directly through the service."""
    user = await client.app[AUTH].create_user(
        username=username, password=PASSWORD, phone=phone, display_name=display_name
    )
    return user.id


async def phone_login(client: TestClient, account: str = "alice") -> dict[str, str]:
    """Log the app in; returns the Authorization header to use."""
    response = await client.post(
        "/api/app/login", json={"account": account, "password": PASSWORD}
    )
    assert response.status == 200, await response.text()
    token = (await response.json())["token"]
    return {"Authorization": f"Bearer {token}"}


def csrf(client: TestClient) -> dict[str, str]:
    """The CSRF header a page of this site would send, from the cookie jar."""
    for cookie in client.session.cookie_jar:
        if cookie.key == "qrl_csrf":
            return {"X-CSRF-Token": cookie.value}
    return {}


async def new_session(client: TestClient, **headers: str) -> dict[str, Any]:
    """POST /api/qr/sessions as a PC page would."""
    response = await client.post(
        "/api/qr/sessions", json={}, headers={**csrf(client), **headers}
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def watch(
    client: TestClient, session: dict[str, Any], version: int = 0
) -> ClientWebSocketResponse:
    """Open the session's socket and authenticate."""
    ws = await client.ws_connect(f"/ws/qr/{session['id']}")
    await ws.send_json(
        {"type": "auth", "token": session["watch_token"], "version": version}
    )
    return ws


async def next_frame(ws: ClientWebSocketResponse, timeout: float = 5) -> dict[str, Any]:
    """The next JSON frame from the server."""
    message = await ws.receive(timeout=timeout)
    assert message.type.name == "TEXT", message
    return json.loads(message.data)


async def phone(
    client: TestClient, action: str, qr_id: str, auth: dict[str, str]
) -> Any:
    """A phone call on a session; returns the response."""
    return await client.post(f"/api/app/qr/{qr_id}/{action}", headers=auth)


def assert_error(body: dict[str, Any], code: str) -> None:
    """The shared error shape with the expected code."""
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def solve_captcha(client: TestClient) -> dict[str, str]:
    """A captcha id and its answer, read back from the broker as a person reads it."""
    from server.keys import BROKER

    response = await client.post("/api/captcha", headers=csrf(client))
    assert response.status == 201, await response.text()
    captcha_id = (await response.json())["id"]
    answer = await client.app[BROKER].get(f"captcha:{captcha_id}")
    assert answer is not None
    return {"captcha_id": captcha_id, "captcha_answer": answer.lower()}


async def request_code(
    client: TestClient,
    purpose: str,
    destination: str,
    headers: dict[str, str] | None = None,
) -> Any:
    """Solve a captcha and ask for a code; returns the response."""
    body = {
        "purpose": purpose,
        "destination": destination,
        **await solve_captcha(client),
    }
    return await client.post(
        "/api/codes", json=body, headers={**csrf(client), **(headers or {})}
    )


async def outbox_code(client: TestClient, destination: str) -> str | None:
    """The six digits of the newest message to destination in the development outbox."""
    import re

    from server.keys import DELIVERY

    message = await client.app[DELIVERY].outbox.latest(destination)
    if message is None:
        return None
    found = re.search(r"\b(\d{6})\b", message.text)
    return found.group(1) if found else None
