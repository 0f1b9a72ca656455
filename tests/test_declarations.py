"""Declarations: windows, validation, attachments, every status change and who may
make it, and isolation between enterprises; on both backend pairs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server.keys import AUDIT, ENGINE, NOTIFY
from server.tables import audit_events, declaration_attachments
from tests.conftest import FakeClock
from tests.helpers import assert_error
from tests.test_zone import web_login
from tests.zone_helpers import DAY, certified, program, staff_member

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 100
MAX_BYTES = 4096
COMPLETE = {
    "project_name": "智能产线技术改造项目",
    "category": "智能装备",
    "total_investment": "1200.50",
    "amount_requested": "300",
    "contact_name": "王经理",
    "contact_phone": "13800000001",
    "description": "建设一条柔性智能产线，提升产能与良品率。",
}


@pytest.fixture
def clock() -> FakeClock:
    """Windows are judged by a clock the tests move."""
    return FakeClock()


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    """Attachments go to this test's folder, with a small size limit."""
    return {
        "attachment_dir": str(tmp_path / "files"),
        "attachment_max_bytes": MAX_BYTES,
    }


async def setup_program(
    client: TestClient, **window: Any
) -> tuple[int, dict[str, str]]:
    """An open (or as given) program and a certified enterprise's header."""
    staff, _ = await staff_member(client)
    program_id = await program(client, staff, **window)
    _, auth = await certified(client, "acme")
    return program_id, auth


async def new_draft(
    client: TestClient, auth: dict[str, str], program_id: int, **fields: Any
) -> int:
    """POST /api/declarations; returns the id."""
    response = await client.post(
        "/api/declarations", headers=auth, json={"program_id": program_id, **fields}
    )
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def upload(
    client: TestClient,
    auth: dict[str, str],
    declaration_id: int,
    data: bytes,
    name: str = "申报书.pdf",
) -> Any:
    """Upload raw bytes as an attachment; returns the response."""
    return await client.post(
        f"/api/declarations/{declaration_id}/attachments",
        params={"name": name},
        data=data,
        headers={**auth, "Content-Type": "application/octet-stream"},
    )


async def ready(client: TestClient, auth: dict[str, str], program_id: int) -> int:
    """A complete draft with one attachment."""
    declaration_id = await new_draft(client, auth, program_id, **COMPLETE)
    assert (await upload(client, auth, declaration_id, PDF)).status == 201
    return declaration_id


async def act(
    client: TestClient,
    auth: dict[str, str],
    declaration_id: int,
    action: str,
    comment: str = "",
) -> Any:
    """An enterprise action (submit, withdraw) or a staff decision."""
    if action in ("submit", "withdraw"):
        return await client.post(
            f"/api/declarations/{declaration_id}/{action}", headers=auth
        )
    return await client.post(
        f"/api/staff/declarations/{declaration_id}/{action}",
        json={"comment": comment},
        headers=auth,
    )


async def test_draft_is_filled_from_the_certification(client: TestClient) -> None:
    program_id, auth = await setup_program(client)
    declaration_id = await new_draft(client, auth, program_id)
    body = await (
        await client.get(f"/api/declarations/{declaration_id}", headers=auth)
    ).json()
    assert body["enterprise_name"] == "北京示例科技有限公司"
    assert len(body["uscc"]) == 18 and body["status"] == "draft"
    assert [e["action"] for e in body["history"]] == ["create"]
    again = await client.post(
        "/api/declarations", headers=auth, json={"program_id": program_id}
    )
    assert again.status == 409
    assert (await again.json())["error"]["details"] == {"id": declaration_id}


async def test_uncertified_users_cannot_declare(client: TestClient) -> None:
    staff, staff_auth = await staff_member(client)
    program_id = await program(client, staff)
    response = await client.post(
        "/api/declarations", headers=staff_auth, json={"program_id": program_id}
    )
    assert response.status == 403
    assert_error(await response.json(), "not_certified")
    assert (
        await client.post("/api/declarations", json={"program_id": 1})
    ).status == 401


async def test_window_before_during_after(client: TestClient, clock: FakeClock) -> None:
    program_id, auth = await setup_program(client, opens=DAY, closes=3 * DAY)
    early = await client.post(
        "/api/declarations", headers=auth, json={"program_id": program_id}
    )
    assert early.status == 409
    assert_error(await early.json(), "window_not_open")

    clock.advance(DAY)  # exactly at opens_at: open
    declaration_id = await ready(client, auth, program_id)
    clock.advance(2 * DAY)  # exactly at closes_at: closed
    late = await act(client, auth, declaration_id, "submit")
    assert late.status == 410
    assert_error(await late.json(), "window_closed")
    clock.advance(-1)
    assert (await act(client, auth, declaration_id, "submit")).status == 200


async def test_submit_names_every_wrong_field(client: TestClient) -> None:
    program_id, auth = await setup_program(client)
    declaration_id = await new_draft(client, auth, program_id)
    response = await act(client, auth, declaration_id, "submit")
    assert response.status == 422
    details = (await response.json())["error"]["details"]
    assert set(details) == {
        "project_name",
        "category",
        "total_investment",
        "amount_requested",
        "contact_name",
        "contact_phone",
        "description",
        "attachments",
    }

    over = {**COMPLETE, "amount_requested": "2000"}
    await client.patch(f"/api/declarations/{declaration_id}", json=over, headers=auth)
    await upload(client, auth, declaration_id, PNG, "photo.png")
    response = await act(client, auth, declaration_id, "submit")
    assert (await response.json())["error"]["details"] == {
        "amount_requested": "申请资金不能超过项目总投资"
    }


async def test_save_checks_formats(client: TestClient) -> None:
    program_id, auth = await setup_program(client)
    declaration_id = await new_draft(client, auth, program_id)
    url = f"/api/declarations/{declaration_id}"
    for field, value in (
        ("total_investment", "1.234"),
        ("total_investment", "-1"),
        ("total_investment", "abc"),
        ("contact_phone", "12345"),
        ("category", "不存在的类别"),
        ("project_name", "x" * 129),
    ):
        response = await client.patch(url, json={field: value}, headers=auth)
        assert response.status == 422, (field, value)
        assert field in (await response.json())["error"]["details"], (field, value)


async def test_save_many_times_then_submit_once(client: TestClient) -> None:
    program_id, auth = await setup_program(client)
    declaration_id = await new_draft(client, auth, program_id)
    url = f"/api/declarations/{declaration_id}"
    for name in ("第一稿", "第二稿", COMPLETE["project_name"]):
        saved = await client.patch(
            url, json={**COMPLETE, "project_name": name}, headers=auth
        )
        assert saved.status == 200, await saved.text()
    cleared = await client.patch(url, json={"total_investment": ""}, headers=auth)
    assert cleared.status == 200
    body = await (await client.get(url, headers=auth)).json()
    assert body["total_investment"] is None and body["amount_requested"] == "300.00"
    await client.patch(url, json={"total_investment": 1200.5}, headers=auth)
    await upload(client, auth, declaration_id, PDF)

    assert (await act(client, auth, declaration_id, "submit")).status == 200
    second = await act(client, auth, declaration_id, "submit")
    assert second.status == 409
    assert_error(await second.json(), "already_submitted")
    locked = await client.patch(url, json={"project_name": "改名"}, headers=auth)
    assert locked.status == 409
    assert_error(await locked.json(), "not_editable")
    assert (await upload(client, auth, declaration_id, PDF)).status == 409


async def test_attachments_are_sniffed_and_limited(
    client: TestClient, tmp_path: Path
) -> None:
    program_id, auth = await setup_program(client)
    declaration_id = await new_draft(client, auth, program_id)

    text = await upload(client, auth, declaration_id, b"just some text " * 10, "a.pdf")
    assert text.status == 415
    assert_error(await text.json(), "unsupported_type")
    renamed = await upload(client, auth, declaration_id, EXE, "report.pdf")
    assert renamed.status == 415
    polyglot = await upload(client, auth, declaration_id, EXE + PDF, "report.pdf")
    assert polyglot.status == 415
    big = await upload(client, auth, declaration_id, PDF + b"0" * MAX_BYTES)
    assert big.status == 413
    assert_error(await big.json(), "attachment_too_large")
    empty = await upload(client, auth, declaration_id, b"")
    assert empty.status == 422

    png = await upload(client, auth, declaration_id, PNG, "../../etc/passwd.exe")
    assert png.status == 201, await png.text()
    stored = await png.json()
    assert stored["content_type"] == "image/png" and stored["filename"] == "passwd.png"
    assert stored["sha256"] == hashlib.sha256(PNG).hexdigest()
    files = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() == PNG

    download = await client.get(stored["url"], headers=auth)
    assert download.status == 200 and await download.read() == PNG
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["Content-Disposition"].startswith("attachment;")

    files[0].write_bytes(PNG + b"tampered")
    corrupt = await client.get(stored["url"], headers=auth)
    assert corrupt.status == 503
    assert_error(await corrupt.json(), "attachment_corrupt")

    gone = await client.delete(stored["url"], headers=auth)
    assert gone.status == 200
    assert not files[0].exists()
    async with client.app[ENGINE].connect() as conn:
        count = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(declaration_attachments)
            )
        ).scalar_one()
    assert count == 0


async def test_the_whole_review(client: TestClient) -> None:
    """Every transition, its history line, its notification and its audit event."""
    program_id, auth = await setup_program(client)
    _, staff_auth = await staff_member(client, "reviewer")
    acme = await client.get("/api/declarations", headers=auth)
    declaration_id = await ready(client, auth, program_id)
    assert (await acme.json())["items"] == []

    assert (await act(client, auth, declaration_id, "submit")).status == 200
    assert (await act(client, auth, declaration_id, "withdraw")).status == 200
    assert (await act(client, auth, declaration_id, "submit")).status == 200
    assert (await act(client, staff_auth, declaration_id, "accept")).status == 200
    late = await act(client, auth, declaration_id, "withdraw")
    assert late.status == 409
    assert_error(await late.json(), "cannot_withdraw")

    no_reason = await act(client, staff_auth, declaration_id, "return")
    assert no_reason.status == 422
    returned = await act(client, staff_auth, declaration_id, "return", "请补充营业执照")
    assert (await returned.json())["status"] == "returned"
    url = f"/api/declarations/{declaration_id}"
    fixed = await client.patch(
        url, json={"description": COMPLETE["description"] + "已补充"}, headers=auth
    )
    assert fixed.status == 200
    assert (await upload(client, auth, declaration_id, PNG, "执照.png")).status == 201
    assert (await act(client, auth, declaration_id, "submit")).status == 200
    assert (await act(client, staff_auth, declaration_id, "accept")).status == 200
    assert (await act(client, staff_auth, declaration_id, "approve")).status == 200
    for action in ("approve", "reject", "accept", "return"):
        response = await act(client, staff_auth, declaration_id, action, "再次审核")
        assert response.status == 409, action

    body = await (await client.get(url, headers=auth)).json()
    assert [(e["action"], e["to_status"]) for e in body["history"]] == [
        ("create", "draft"),
        ("submit", "submitted"),
        ("withdraw", "draft"),
        ("submit", "submitted"),
        ("accept", "in_review"),
        ("return", "returned"),
        ("submit", "submitted"),
        ("accept", "in_review"),
        ("approve", "approved"),
    ]
    assert body["history"][5]["comment"] == "请补充营业执照"
    assert body["status"] == "approved" and not body["editable"]

    user_id = body["history"][0]["actor_id"]
    titles = [n["title"] for n in await client.app[NOTIFY].latest(user_id)]
    for title in ("申报书审核通过", "申报书被退回修改", "申报书已受理", "申报书已提交"):
        assert title in titles
    await client.app[AUDIT].flush()
    async with client.app[ENGINE].connect() as conn:
        events = set((await conn.execute(sa.select(audit_events.c.event))).scalars())
    assert {
        "declaration_created",
        "declaration_submitted",
        "declaration_withdrawn",
        "declaration_accept",
        "declaration_return",
        "declaration_approve",
        "attachment_added",
    } <= events


async def test_reject_needs_a_comment_and_ends_it(client: TestClient) -> None:
    program_id, auth = await setup_program(client)
    _, staff_auth = await staff_member(client, "reviewer")
    declaration_id = await ready(client, auth, program_id)
    early = await act(client, staff_auth, declaration_id, "reject", "不符合条件")
    assert early.status == 409  # review has not started
    await act(client, auth, declaration_id, "submit")
    await act(client, staff_auth, declaration_id, "accept")
    assert (await act(client, staff_auth, declaration_id, "reject", " ")).status == 422
    rejected = await act(client, staff_auth, declaration_id, "reject", "不符合申报条件")
    assert (await rejected.json())["status"] == "rejected"
    assert (await act(client, auth, declaration_id, "submit")).status == 409
    body = await (
        await client.get(f"/api/declarations/{declaration_id}", headers=auth)
    ).json()
    assert body["review_comment"] == "不符合申报条件"


async def test_only_staff_review(client: TestClient) -> None:
    program_id, auth = await setup_program(client)
    declaration_id = await ready(client, auth, program_id)
    await act(client, auth, declaration_id, "submit")
    for action in ("accept", "approve", "return", "reject"):
        response = await act(client, auth, declaration_id, action, "自己审核自己")
        assert response.status == 403, action
        assert_error(await response.json(), "staff_only")
    assert (await client.get("/api/staff/declarations", headers=auth)).status == 403
    _, staff_auth = await staff_member(client, "reviewer")
    queue = await (
        await client.get("/api/staff/declarations?status=submitted", headers=staff_auth)
    ).json()
    assert [d["id"] for d in queue["items"]] == [declaration_id]
    # Staff cannot act for the enterprise.
    assert (await act(client, staff_auth, declaration_id, "withdraw")).status == 404
    unknown = await client.post(
        "/api/staff/declarations/99999/accept", json={}, headers=staff_auth
    )
    assert unknown.status == 404


async def test_enterprises_cannot_see_each_other(client: TestClient) -> None:
    program_id, auth = await setup_program(client)
    declaration_id = await ready(client, auth, program_id)
    _, other = await certified(
        client, "rival", body="87654321", enterprise="另一家公司"
    )
    url = f"/api/declarations/{declaration_id}"
    attachment = (await (await client.get(url, headers=auth)).json())["attachments"][0]

    for method, path in (
        ("GET", url),
        ("PATCH", url),
        ("POST", url + "/submit"),
        ("POST", url + "/withdraw"),
        ("GET", attachment["url"]),
        ("DELETE", attachment["url"]),
        ("POST", url + "/attachments"),
    ):
        response = await client.request(
            method, path, headers=other, json={} if method == "PATCH" else None
        )
        assert response.status == 404, (method, path, await response.text())
    missing = await client.get("/api/declarations/99999", headers=other)
    assert (await missing.json())["error"]["code"] == "unknown_declaration"
    assert (await (await client.get("/api/declarations", headers=other)).json()) == {
        "items": []
    }
    mine = await (await client.get("/api/declarations", headers=auth)).json()
    assert [d["id"] for d in mine["items"]] == [declaration_id]
    # The rival may still declare for the same program on its own account.
    assert await new_draft(client, other, program_id) != declaration_id


async def test_pages_show_my_declarations(client: TestClient) -> None:
    program_id, auth = await setup_program(client)
    declaration_id = await ready(client, auth, program_id)
    await staff_member(client, "reviewer")
    await web_login(client, "acme")
    home = await (await client.get("/declare/")).text()
    assert "我的申报" in home and "新建申报" in home
    assert f"/declare/declarations/{declaration_id}" in home
    page = await client.get(f"/declare/declarations/{declaration_id}")
    text = await page.text()
    assert (
        page.status == 200 and COMPLETE["project_name"] in text and "状态记录" in text
    )
    await web_login(client, "reviewer")
    staff_page = await client.get(f"/declare/declarations/{declaration_id}")
    assert staff_page.status == 200
    queue = await client.get("/staff/declarations")
    assert queue.status == 200
