"""One error shape everywhere, the right status for each bad input, never a 500."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.helpers import assert_error, make_user, new_session, phone_login

UNKNOWN = "B" * 24


async def test_bad_input_battery_never_gives_a_500(client: TestClient) -> None:
    """Each bad request gets the shared shape and its status."""
    await make_user(client)
    auth = await phone_login(client)
    session = await new_session(client)
    sid, watch = session["id"], {"Authorization": f"Bearer {session['watch_token']}"}
    cases = [
        ("GET", "/api/nope", {}, None, 404, "not_found"),
        ("DELETE", "/api/qr/sessions", {}, None, 405, "method_not_allowed"),
        ("POST", "/api/qr/sessions", {}, b"{not json", 400, "bad_json"),
        ("POST", "/api/qr/sessions", {}, b"[1]", 400, "bad_json"),
        ("POST", "/api/qr/sessions", {}, b'{"rotate_from": 5}', 422, "invalid"),
        ("POST", "/api/qr/sessions", {}, b"x" * 70_000, 413, "too_large"),
        ("GET", f"/api/qr/sessions/{sid}?wait=abc", watch, None, 400, "bad_query"),
        ("GET", f"/api/qr/sessions/{sid}?wait=999", watch, None, 400, "bad_query"),
        ("GET", f"/api/qr/sessions/{sid}?since=x", watch, None, 400, "bad_query"),
        ("GET", "/api/qr/sessions/short", watch, None, 401, "bad_watch_token"),
        ("GET", f"/api/qr/sessions/{UNKNOWN}/image", {}, None, 404, "unknown_session"),
        ("GET", "/api/qr/sessions/%00%ff/image", {}, None, 404, "unknown_session"),
        ("POST", f"/api/qr/sessions/{sid}/redeem", watch, b"{}", 422, "invalid"),
        (
            "POST",
            f"/api/qr/sessions/{sid}/redeem",
            watch,
            b'{"ticket": "x"}',
            401,
            "bad_ticket",  # the ticket is checked before the session's state
        ),
        (
            "POST",
            f"/api/qr/sessions/{sid}/redeem",
            watch,
            b'{"ticket": ' + b'"x' * 400 + b'"}',
            400,
            "bad_json",
        ),
        ("POST", f"/api/app/qr/{UNKNOWN}/scan", auth, None, 404, "unknown_session"),
        ("POST", "/api/app/qr/../scan", auth, None, 404, "not_found"),
        ("POST", f"/api/app/qr/{sid}/confirm", auth, None, 409, "wrong_state"),
        (
            "POST",
            f"/api/app/qr/{sid}/scan",
            {"Authorization": "Basic abc"},
            None,
            401,
            "unauthorized",
        ),
        ("POST", "/api/app/login", {}, b'{"account": "alice"}', 422, "invalid"),
        (
            "POST",
            "/api/app/login",
            {},
            b'{"account": "alice", "password": "wrong one"}',
            401,
            "bad_credentials",
        ),
        (
            "POST",
            "/api/app/login",
            {},
            b'{"account": "nobody", "password": "wrong one"}',
            401,
            "bad_credentials",
        ),
        (
            "POST",
            "/api/app/login",
            {},
            b'{"account": 5, "password": []}',
            422,
            "invalid",
        ),
        (
            "GET",
            "/api/app/me",
            {"Authorization": "Bearer " + "x" * 500},
            None,
            401,
            "unauthorized",
        ),
    ]
    for method, path, headers, body, status, code in cases:
        response = await client.request(method, path, headers=headers, data=body)
        assert response.status == status, (method, path, await response.text())
        assert_error(await response.json(), code)


async def test_unknown_and_wrong_password_look_the_same(client: TestClient) -> None:
    await make_user(client)
    wrong = await client.post(
        "/api/app/login", json={"account": "alice", "password": "nope nope"}
    )
    unknown = await client.post(
        "/api/app/login", json={"account": "bob", "password": "nope nope"}
    )
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json()


async def test_pages_get_an_error_page(client: TestClient) -> None:
    response = await client.get("/no/such/page")
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "not_found" in await response.text()
    confirm = await client.get("/qr/s/" + UNKNOWN)
    assert confirm.status == 404
    assert "unknown_session" in await confirm.text()


async def test_security_headers_on_pages(client: TestClient) -> None:
    response = await client.get("/declare/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
