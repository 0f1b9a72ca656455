"""Steps the zone and declaration tests share: certified users, staff, programs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp.test_utils import TestClient

from server.auth.service import User
from server.certification.service import Enterprise
from server.keys import AUTH, CERT, CLOCK, ZONE
from tests.helpers import PASSWORD, phone_login
from tests.test_certification import make_uscc

DAY = 86400.0


async def certified(
    client: TestClient,
    name: str,
    body: str = "12345678",
    enterprise: str = "北京示例科技有限公司",
) -> tuple[User, dict[str, str]]:
    """A user bound to an enterprise, and the app's Authorization header."""
    user = await client.app[AUTH].create_user(username=name, password=PASSWORD)
    uscc = make_uscc(body)
    await client.app[CERT].bind(
        user, Enterprise(subject=f"yzt-{name}", name=enterprise, uscc=uscc)
    )
    return user, await phone_login(client, name)


async def staff_member(
    client: TestClient, name: str = "staffer"
) -> tuple[User, dict[str, str]]:
    """A platform staff account and its Authorization header."""
    user = await client.app[AUTH].create_user(
        username=name, password=PASSWORD, is_staff=True
    )
    return user, await phone_login(client, name)


def at(client: TestClient, offset: float) -> dt.datetime:
    """The app clock's now plus offset seconds, as an aware datetime."""
    return dt.datetime.fromtimestamp(client.app[CLOCK]() + offset, dt.UTC)


async def program(
    client: TestClient,
    staff: User,
    *,
    opens: float = -DAY,
    closes: float = 30 * DAY,
    status: str = "published",
    **fields: Any,
) -> int:
    """A program whose window is relative to the app clock's now."""
    values: dict[str, Any] = {
        "title": "北京市高精尖产业发展资金申报",
        "department": "北京市经济和信息化局",
        "summary": "年度扶持项目",
        "notice_html": "<p>通知</p>",
        "entry_url": "/zone/guides/gjj",
        **fields,
    }
    return await client.app[ZONE].save_program(
        staff,
        None,
        opens_at=at(client, opens),
        closes_at=at(client, closes),
        status=status,
        **values,
    )
