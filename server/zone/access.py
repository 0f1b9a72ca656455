"""Who may enter the zone: logged-in users whose enterprise is certified, and staff.

The guide says a user who has not bound a 一证通 enterprise account is sent to do
that first; pages redirect to the personal center's 资质认证 card, JSON answers 403.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from server.auth.service import User
from server.auth.web import current_user, phone_user
from server.errors import Forbidden, NotFound
from server.keys import CERT

NOT_CERTIFIED = "进入一体化申报平台前，请先完成企业认证（与一证通企业账号关联绑定）。"
CERTIFY_URL = "/center/?need=certification#certification"


class NotCertified(Forbidden):
    """403: the account is not bound to an enterprise; details.next says where to go."""

    code = "not_certified"
    message = NOT_CERTIFIED


async def page_entrant(request: web.Request) -> tuple[User, dict[str, Any] | None]:
    """The user of a zone page and their binding; redirects the others."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound(f"/declare/login?next={quote(request.path_qs, safe='/')}")
    binding = await request.app[CERT].binding(user.id)
    if binding is None and not user.is_staff:
        raise web.HTTPFound(CERTIFY_URL)
    return user, binding


async def api_entrant(request: web.Request) -> tuple[User, dict[str, Any] | None]:
    """The user of a zone JSON call and their binding; 403 not_certified otherwise."""
    user, _ = await phone_user(request)
    binding = await request.app[CERT].binding(user.id)
    if binding is None and not user.is_staff:
        raise NotCertified(details={"next": CERTIFY_URL})
    return user, binding


async def page_staff(request: web.Request) -> User:
    """The staff member of a staff page; others are sent to log in or refused."""
    user = await current_user(request)
    if user is None:
        raise web.HTTPFound(f"/declare/login?next={quote(request.path, safe='/')}")
    if not user.is_staff:
        raise Forbidden("仅平台工作人员可以访问。", code="staff_only")
    return user


async def api_staff(request: web.Request) -> User:
    """The staff member of a staff JSON call."""
    user, _ = await phone_user(request)
    if not user.is_staff:
        raise Forbidden("仅平台工作人员可以操作。", code="staff_only")
    return user


def int_param(request: web.Request, name: str, code: str) -> int:
    """A numeric path parameter; anything else is a 404, never a 500."""
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound("Nothing was found here.", code=code)
    return int(raw)
