"""The declaration zone: who may enter, programs and their notices, short links."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server.keys import AUTH, ENGINE, ZONE
from server.tables import programs
from server.zone.service import GJJ_SHORT, GJJ_TITLE
from tests.conftest import FakeClock
from tests.helpers import PASSWORD, assert_error, csrf, phone_login
from tests.zone_helpers import DAY, certified, program, staff_member


@pytest.fixture
def clock() -> FakeClock:
    """Windows are judged by a clock the tests move."""
    return FakeClock()


async def web_login(client: TestClient, account: str) -> None:
    """Log the test client's browser in with the password form."""
    await client.get("/declare/login")
    response = await client.post(
        "/declare/login",
        data={
            "account": account,
            "password": PASSWORD,
            "csrf": csrf(client)["X-CSRF-Token"],
        },
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()


async def test_anonymous_users_are_sent_to_log_in(client: TestClient) -> None:
    response = await client.get("/zone/", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"].startswith("/declare/login?next=/zone/")


async def test_uncertified_users_are_sent_to_certification(client: TestClient) -> None:
    """The guide: bind a 一证通 enterprise account first, then enter the zone."""
    await client.app[AUTH].create_user(username="indiv", password=PASSWORD)
    auth = await phone_login(client, "indiv")
    await web_login(client, "indiv")
    response = await client.get("/zone/", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"].startswith("/center/?need=certification")
    center = await (await client.get(response.headers["Location"])).text()
    assert 'data-testid="certify-first"' in center and "资质认证" in center
    home = await (await client.get("/portal/")).text()
    assert "一体化申报平台" in home and 'data-testid="certify-first"' in home

    listing = await client.get("/api/programs", headers=auth)
    assert listing.status == 403
    assert_error(await listing.json(), "not_certified")


async def test_app_home_entry_depends_on_certification(client: TestClient) -> None:
    await client.app[AUTH].create_user(username="indiv", password=PASSWORD)
    plain = await (
        await client.get("/api/app/home", headers=await phone_login(client, "indiv"))
    ).json()
    entry = plain["entries"][0]
    assert entry["title"] == "一体化申报平台" and not entry["certified"]
    assert "/center/" in entry["url"] and "企业认证" in entry["message"]

    _, auth = await certified(client, "acme")
    ready = (await (await client.get("/api/app/home", headers=auth)).json())["entries"][
        0
    ]
    assert (
        ready["certified"] and ready["url"].endswith("/zone/") and not ready["message"]
    )
    assert (await client.get("/api/app/home")).status == 401


async def test_list_search_and_filters(client: TestClient, clock: FakeClock) -> None:
    staff, _ = await staff_member(client)
    await program(client, staff, title="高精尖资金", department="经信局")
    await program(client, staff, title="专精特新奖励", department="科委", opens=2 * DAY)
    await program(
        client,
        staff,
        title="往年项目",
        department="经信局",
        opens=-9 * DAY,
        closes=-DAY,
    )
    await program(client, staff, title="草稿项目", status="draft")
    _, auth = await certified(client, "acme")

    async def titles(query: str = "") -> list[str]:
        response = await client.get(f"/api/programs{query}", headers=auth)
        assert response.status == 200, await response.text()
        return sorted(p["title"] for p in (await response.json())["items"])

    assert await titles() == ["专精特新奖励", "往年项目", "高精尖资金"]
    assert await titles("?q=高精尖") == ["高精尖资金"]
    assert await titles("?q=%25") == []  # a LIKE wildcard is searched for literally
    assert await titles("?department=经信局") == ["往年项目", "高精尖资金"]
    assert await titles("?state=open") == ["高精尖资金"]
    assert await titles("?state=upcoming") == ["专精特新奖励"]
    clock.advance(3 * DAY)
    assert await titles("?state=open") == ["专精特新奖励", "高精尖资金"]

    staff_items = await (
        await client.get(
            "/api/staff/programs", headers=(await staff_member(client, "second"))[1]
        )
    ).json()
    assert "草稿项目" in [p["title"] for p in staff_items["items"]]


async def test_drafts_are_hidden_from_enterprises(client: TestClient) -> None:
    staff, staff_auth = await staff_member(client)
    draft = await program(client, staff, status="draft")
    _, auth = await certified(client, "acme")
    response = await client.get(f"/api/programs/{draft}", headers=auth)
    assert response.status == 404
    assert (
        await client.get(f"/api/programs/{draft}", headers=staff_auth)
    ).status == 200
    assert (await client.get("/api/programs/abc", headers=auth)).status == 404


async def test_notice_html_is_sanitised_on_save_and_render(client: TestClient) -> None:
    _staff, staff_auth = await staff_member(client)
    body = {
        "title": "测试项目",
        "department": "经信局",
        "notice_html": '<p onclick="steal()">通知<script>alert(1)</script></p>'
        '<a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)>'
        '<iframe src="https://evil.example"></iframe><h2>申报条件</h2>',
        "entry_url": "/zone/guides/gjj",
        "opens_at": "2027-01-01T09:00",
        "closes_at": "2027-03-01T17:00",
        "status": "published",
    }
    created = await client.post("/api/staff/programs", json=body, headers=staff_auth)
    assert created.status == 201, await created.text()
    program_id = (await created.json())["id"]
    async with client.app[ENGINE].connect() as conn:
        stored = (
            await conn.execute(
                sa.select(programs.c.notice_html).where(programs.c.id == program_id)
            )
        ).scalar_one()
    for bad in ("script", "onclick", "javascript:", "onerror", "iframe"):
        assert bad not in stored
    assert "<h2>申报条件</h2>" in stored

    # A row written around the service is cleaned when rendered.
    async with client.app[ENGINE].begin() as conn:
        await conn.execute(
            programs.update()
            .where(programs.c.id == program_id)
            .values(notice_html="<p>hi</p><script>alert(2)</script>")
        )
    notice = await client.get(f"/api/programs/{program_id}", headers=staff_auth)
    assert (await notice.json())["notice_html"] == "<p>hi</p>"


async def test_program_windows_are_beijing_time(client: TestClient) -> None:
    _staff, staff_auth = await staff_member(client)
    body = {
        "title": "时区",
        "department": "经信局",
        "opens_at": "2027-01-01T09:00",
        "closes_at": "2027-01-01T08:00",
    }
    bad = await client.post("/api/staff/programs", json=body, headers=staff_auth)
    assert bad.status == 422 and "closes_at" in (await bad.json())["error"]["details"]
    body["closes_at"] = "2027-02-01T17:00"
    created = await (
        await client.post("/api/staff/programs", json=body, headers=staff_auth)
    ).json()
    item = await client.app[ZONE].program(created["id"], staff=True)
    assert item["opens_at"] == dt.datetime(2027, 1, 1, 1, tzinfo=dt.UTC).timestamp()
    assert item["opens_text"] == "2027-01-01 09:00"


async def test_only_staff_manage_the_zone(client: TestClient) -> None:
    _, auth = await certified(client, "acme")
    body = {
        "title": "x" * 5,
        "department": "经信局",
        "opens_at": "2027-01-01T09:00",
        "closes_at": "2027-02-01T09:00",
    }
    for method, path, payload in (
        ("POST", "/api/staff/programs", body),
        ("POST", "/api/staff/short-links", {"target": "/declare/login"}),
        ("PUT", "/api/staff/guides/gjj", {"title": "引导"}),
        ("GET", "/api/staff/programs", None),
    ):
        response = await client.request(method, path, json=payload, headers=auth)
        assert response.status == 403, (path, await response.text())
        assert_error(await response.json(), "staff_only")


async def test_short_link_counts_every_hit(client: TestClient) -> None:
    """Concurrent visits are all counted: the increment is one UPDATE."""
    _, staff_auth = await staff_member(client)
    made = await client.post(
        "/api/staff/short-links",
        json={"code": "gjj2027", "target": "/declare/login"},
        headers=staff_auth,
    )
    assert made.status == 201, await made.text()
    assert (await made.json())["url"].endswith("/short/gjj2027")

    responses = await asyncio.gather(
        *(client.get("/short/gjj2027", allow_redirects=False) for _ in range(25))
    )
    assert {r.status for r in responses} == {302}
    assert responses[0].headers["Location"] == "/declare/login"
    links = await (
        await client.get("/api/staff/short-links", headers=staff_auth)
    ).json()
    assert links["items"][0]["hits"] == 25

    retarget = await client.post(
        "/api/staff/short-links",
        json={"code": "gjj2027", "target": "/zone/"},
        headers=staff_auth,
    )
    assert retarget.status == 201
    moved = await client.get("/short/gjj2027", allow_redirects=False)
    assert moved.headers["Location"] == "/zone/"
    links = await (
        await client.get("/api/staff/short-links", headers=staff_auth)
    ).json()
    assert links["items"][0]["hits"] == 26

    assert (await client.get("/short/nope1234", allow_redirects=False)).status == 404
    assert (await client.get("/short/%3Cx%3E", allow_redirects=False)).status == 404


async def test_short_link_targets_are_checked(client: TestClient) -> None:
    _, staff_auth = await staff_member(client)
    for target in ("javascript:alert(1)", "//evil.example/x", "ftp://x"):
        response = await client.post(
            "/api/staff/short-links", json={"target": target}, headers=staff_auth
        )
        assert response.status == 422, target
        assert "target" in (await response.json())["error"]["details"]
    random = await client.post(
        "/api/staff/short-links",
        json={"target": "https://example.org/a"},
        headers=staff_auth,
    )
    code = (await random.json())["code"]
    assert 4 <= len(code) <= 32


async def test_seed_and_the_guide_page(client: TestClient) -> None:
    """The seeded guide shows the platform's short address and three login options."""
    created = await client.app[ZONE].seed()
    assert set(created) == {"short_link", "guide", "program"}
    assert await client.app[ZONE].seed() == {}

    await certified(client, "acme")
    await web_login(client, "acme")
    zone = await (await client.get("/zone/")).text()
    assert GJJ_TITLE in zone
    program_id = created["program"]
    detail = await (await client.get(f"/zone/programs/{program_id}")).text()
    assert "查看申报通知" in detail
    notice = await (await client.get(f"/zone/programs/{program_id}/notice")).text()
    assert 'href="/zone/guides/gjj"' in notice and "申报入口" in notice
    guide = await (await client.get("/zone/guides/gjj")).text()
    assert f"/short/{GJJ_SHORT}" in guide
    for tab in ("qr", "code", "password"):
        assert f'href="/declare/login?tab={tab}"' in guide
    follow = await client.get(f"/short/{GJJ_SHORT}", allow_redirects=False)
    assert follow.headers["Location"] == "/declare/login"
    assert (await client.get("/zone/guides/none")).status == 404


async def test_staff_write_the_guide(client: TestClient) -> None:
    await client.app[ZONE].seed()
    _staff, staff_auth = await staff_member(client)
    missing = await client.put(
        "/api/staff/guides/gjj",
        headers=staff_auth,
        json={"title": "引导", "short_code": "nosuchcode"},
    )
    assert missing.status == 422
    saved = await client.put(
        "/api/staff/guides/gjj",
        headers=staff_auth,
        json={
            "title": "高精尖资金申报引导（2027）",
            "short_code": GJJ_SHORT,
            "body_html": "<p>新内容</p><script>x()</script>",
        },
    )
    assert saved.status == 200, await saved.text()
    guide = await client.app[ZONE].guide("gjj")
    assert guide["title"].endswith("（2027）") and guide["body_html"] == "<p>新内容</p>"
    bad_slug = await client.put(
        "/api/staff/guides/Bad%20Slug", headers=staff_auth, json={"title": "x"}
    )
    assert bad_slug.status == 422


async def test_staff_pages_render(client: TestClient) -> None:
    await client.app[ZONE].seed()
    await staff_member(client)
    await web_login(client, "staffer")
    page = await client.get("/staff/zone")
    assert page.status == 200 and "专区管理" in await page.text()
    edit = await client.get("/staff/programs/1")
    assert edit.status == 200 and GJJ_TITLE in await edit.text()
    portal = await (await client.get("/portal/")).text()
    assert GJJ_TITLE in portal and 'href="/zone/"' in portal
