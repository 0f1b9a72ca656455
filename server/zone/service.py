"""The rules of the zone: which programs people see, when a window is open, what
staff may publish, and where a short link leads.

A program's declaration window is judged by the injected clock, so tests move time
instead of waiting for it. Times are stored in UTC; forms speak Beijing time.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from server.audit import Audit
from server.auth.service import User
from server.errors import Forbidden, Invalid, NotFound
from server.keys import Clock
from server.zone import store
from server.zone.html import clean

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
PROGRAM_STATUSES = ("draft", "published", "archived")
PHASES = {"upcoming": "未开始", "open": "申报中", "closed": "已截止"}
CODE = re.compile(r"[A-Za-z0-9_-]{4,32}")
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{1,63}")
GJJ_TITLE = "北京市高精尖产业发展资金申报"
GJJ_GUIDE = "gjj"
GJJ_SHORT = "uZnjyD99G9"


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored time as aware UTC (SQLite hands back naive UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def from_beijing(value: dt.datetime) -> dt.datetime:
    """A time from a form: naive means Beijing time; the result is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=BEIJING)
    return value.astimezone(dt.UTC)


def beijing_text(value: dt.datetime) -> str:
    """2026-03-01 09:00, in Beijing time."""
    return as_utc(value).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def phase(row: RowMapping | dict[str, Any], now: float) -> str:
    """upcoming, open or closed: where now falls against the program's window."""
    if row["status"] == "archived" or now >= as_utc(row["closes_at"]).timestamp():
        return "closed"
    if now < as_utc(row["opens_at"]).timestamp():
        return "upcoming"
    return "open"


def is_safe_link(value: str) -> bool:
    """A path on this site or an http(s) URL: never javascript: or //host."""
    if value.startswith("/"):
        return not value.startswith("//") and "\\" not in value
    return value.startswith(("https://", "http://")) and len(value) > 8


def program_json(
    row: RowMapping, now: float, *, notice: bool = False
) -> dict[str, Any]:
    """A program as pages and clients get it; the notice only when asked."""
    state = phase(row, now)
    data: dict[str, Any] = {
        "id": row["id"],
        "title": row["title"],
        "department": row["department"],
        "summary": row["summary"],
        "entry_url": row["entry_url"],
        "status": row["status"],
        "opens_at": as_utc(row["opens_at"]).timestamp(),
        "closes_at": as_utc(row["closes_at"]).timestamp(),
        "opens_text": beijing_text(row["opens_at"]),
        "closes_text": beijing_text(row["closes_at"]),
        "phase": state,
        "phase_text": PHASES[state],
    }
    if notice:
        data["notice_html"] = clean(row["notice_html"])
    return data


def require_staff(user: User) -> None:
    """Refuse anyone but platform staff."""
    if not user.is_staff:
        raise Forbidden("仅平台工作人员可以操作。", code="staff_only")


class Zone:
    """Programs, guides and short links."""

    def __init__(self, *, engine: AsyncEngine, audit: Audit, clock: Clock) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock

    def now(self) -> float:
        """The injected clock's time."""
        return self._clock()

    async def programs(
        self,
        *,
        text: str = "",
        department: str = "",
        state: str = "",
        staff: bool = False,
    ) -> list[dict[str, Any]]:
        """Published programs (all of them for staff), searched and filtered."""
        statuses = PROGRAM_STATUSES if staff else ("published",)
        async with self._engine.connect() as conn:
            rows = await store.fetch_programs(
                conn,
                statuses=statuses,
                text=text.strip(),
                department=department.strip(),
            )
        now = self.now()
        items = [program_json(row, now) for row in rows]
        if state in PHASES:
            items = [p for p in items if p["phase"] == state]
        return items

    async def departments(self) -> list[str]:
        """Departments that have published programs."""
        async with self._engine.connect() as conn:
            return await store.fetch_departments(conn)

    async def program(self, program_id: int, *, staff: bool = False) -> dict[str, Any]:
        """One program with its sanitised notice; a draft is a 404 to all but staff."""
        async with self._engine.connect() as conn:
            row = await store.fetch_program(conn, program_id)
        if row is None or (row["status"] == "draft" and not staff):
            raise NotFound("没有找到这个申报项目。", code="unknown_program")
        return program_json(row, self.now(), notice=True)

    async def save_program(
        self,
        staff: User,
        program_id: int | None,
        *,
        title: str,
        department: str,
        summary: str,
        notice_html: str,
        entry_url: str,
        opens_at: dt.datetime,
        closes_at: dt.datetime,
        status: str,
        ip: str = "",
    ) -> int:
        """Create (program_id None) or replace a program; the notice is cleaned."""
        require_staff(staff)
        title, department, entry_url = (
            title.strip(),
            department.strip(),
            entry_url.strip(),
        )
        opens, closes = from_beijing(opens_at), from_beijing(closes_at)
        values: dict[str, Any] = {
            "title": title,
            "department": department,
            "summary": summary.strip(),
            "notice_html": clean(notice_html),
            "entry_url": entry_url,
            "opens_at": opens,
            "closes_at": closes,
            "status": status,
        }
        problems: dict[str, str] = {}
        if not 2 <= len(title) <= 128:
            problems["title"] = "请填写2到128个字的项目名称"
        if not 2 <= len(department) <= 64:
            problems["department"] = "请填写主管部门"
        if entry_url and not is_safe_link(entry_url):
            problems["entry_url"] = "申报入口须是本站路径或 http(s) 地址"
        if closes <= opens:
            problems["closes_at"] = "截止时间须晚于开始时间"
        if status not in PROGRAM_STATUSES:
            problems["status"] = "draft, published or archived"
        if problems:
            raise Invalid(details=problems)
        async with self._engine.begin() as conn:
            if program_id is None:
                program_id = await store.insert_program(conn, **values)
            elif not await store.update_program(conn, program_id, **values):
                raise NotFound("没有找到这个申报项目。", code="unknown_program")
        self._audit.record(
            "program_saved",
            subject=str(program_id),
            user_id=staff.id,
            ip=ip,
            status=status,
        )
        return program_id

    async def set_program_status(
        self, staff: User, program_id: int, status: str, *, ip: str = ""
    ) -> None:
        """Publish, archive or take a program back to draft."""
        require_staff(staff)
        if status not in PROGRAM_STATUSES:
            raise Invalid(details={"status": "draft, published or archived"})
        async with self._engine.begin() as conn:
            if not await store.update_program(conn, program_id, status=status):
                raise NotFound("没有找到这个申报项目。", code="unknown_program")
        self._audit.record(
            f"program_{status}", subject=str(program_id), user_id=staff.id, ip=ip
        )

    async def guide(self, slug: str) -> dict[str, Any]:
        """A guide page with its cleaned body and its short link, if any."""
        async with self._engine.connect() as conn:
            row = await store.fetch_guide(conn, slug)
        if row is None:
            raise NotFound("没有找到这个页面。", code="unknown_guide")
        return {
            "slug": row["slug"],
            "title": row["title"],
            "body_html": clean(row["body_html"]),
            "short_code": row["short_code"],
            "updated_at": as_utc(row["updated_at"]).timestamp(),
        }

    async def guides(self) -> list[dict[str, Any]]:
        """Every guide page, for the staff page."""
        async with self._engine.connect() as conn:
            rows = await store.fetch_guides(conn)
        return [
            {
                "slug": r["slug"],
                "title": r["title"],
                "body_html": r["body_html"],
                "short_code": r["short_code"] or "",
            }
            for r in rows
        ]

    async def save_guide(
        self,
        staff: User,
        slug: str,
        *,
        title: str,
        body_html: str,
        short_code: str = "",
        ip: str = "",
    ) -> None:
        """Write a guide page; the body is cleaned, the short code must exist."""
        require_staff(staff)
        problems: dict[str, str] = {}
        if not SLUG.fullmatch(slug):
            problems["slug"] = "小写字母、数字和连字符，2到64个"
        if not 2 <= len(title.strip()) <= 128:
            problems["title"] = "请填写标题"
        short_code = short_code.strip()
        async with self._engine.begin() as conn:
            if short_code and await store.fetch_short_link(conn, short_code) is None:
                problems["short_code"] = "没有这个短链接"
            if problems:
                raise Invalid(details=problems)
            await store.upsert_guide(
                conn,
                slug,
                title=title.strip(),
                body_html=clean(body_html),
                short_code=short_code or None,
                updated_by=staff.id,
            )
        self._audit.record("guide_saved", subject=slug, user_id=staff.id, ip=ip)

    async def follow(self, code: str) -> str:
        """Count a visit to a short link and return where it leads."""
        if not CODE.fullmatch(code):
            raise NotFound("这个短链接不存在。", code="unknown_short_link")
        async with self._engine.begin() as conn:
            target = await store.hit_short_link(conn, code)
        if target is None:
            raise NotFound("这个短链接不存在。", code="unknown_short_link")
        return target

    async def short_links(self) -> list[dict[str, Any]]:
        """Every short link with its hit count."""
        async with self._engine.connect() as conn:
            rows = await store.fetch_short_links(conn)
        return [
            {
                "code": r["code"],
                "target": r["target"],
                "hits": int(r["hits"]),
                "path": f"/short/{r['code']}",
            }
            for r in rows
        ]

    async def save_short_link(
        self, staff: User, *, target: str, code: str = "", ip: str = ""
    ) -> str:
        """Create a short link (a random code when none is given) or retarget one."""
        require_staff(staff)
        target, code = target.strip(), code.strip()
        problems: dict[str, str] = {}
        if not is_safe_link(target) or len(target) > 1024:
            problems["target"] = "须是本站路径或 http(s) 地址"
        if code and not CODE.fullmatch(code):
            problems["code"] = "4到32个字母、数字、下划线或连字符"
        if problems:
            raise Invalid(details=problems)
        async with self._engine.begin() as conn:
            if code and await store.update_short_link(conn, code, target):
                pass
            else:
                code = code or secrets.token_urlsafe(8)[:10].replace("-", "x")
                await store.insert_short_link(
                    conn, code=code, target=target, created_by=staff.id
                )
        self._audit.record(
            "short_link_saved", subject=code, user_id=staff.id, ip=ip, target=target
        )
        return code

    async def seed(self, *, days: int = 90) -> dict[str, Any]:
        """Add the 高精尖 program, its guide and short link unless they exist.

        Idempotent: running it twice changes nothing the second time. The window
        opens now (by the injected clock) and closes after days.
        """
        opens = dt.datetime.fromtimestamp(self.now(), dt.UTC)
        created: dict[str, Any] = {}
        async with self._engine.begin() as conn:
            if await store.fetch_short_link(conn, GJJ_SHORT) is None:
                await store.insert_short_link(
                    conn, code=GJJ_SHORT, target="/declare/login"
                )
                created["short_link"] = GJJ_SHORT
            if await store.fetch_guide(conn, GJJ_GUIDE) is None:
                await store.upsert_guide(
                    conn,
                    GJJ_GUIDE,
                    title="高精尖资金申报引导",
                    body_html=clean(SEED_GUIDE),
                    short_code=GJJ_SHORT,
                )
                created["guide"] = GJJ_GUIDE
            existing = await store.fetch_program_by_title(conn, GJJ_TITLE)
            if existing is None:
                created["program"] = await store.insert_program(
                    conn,
                    title=GJJ_TITLE,
                    department="北京市经济和信息化局",
                    summary=SEED_SUMMARY,
                    notice_html=clean(SEED_NOTICE),
                    entry_url=f"/zone/guides/{GJJ_GUIDE}",
                    opens_at=opens,
                    closes_at=opens + dt.timedelta(days=days),
                    status="published",
                )
        return created


SEED_SUMMARY = (
    "支持高精尖产业项目建设，鼓励企业开展技术改造、产业化和创新能力提升。"
    "符合条件的企业可在申报期内通过高精尖资金申报平台在线提交申报书。"
)
SEED_NOTICE = """
<h2>关于组织开展北京市高精尖产业发展资金项目申报工作的通知</h2>
<p>各有关单位：</p>
<p>为推动本市高精尖产业发展，现组织开展高精尖产业发展资金项目申报工作。</p>
<h3>一、申报条件</h3>
<ol><li>在本市注册、具有独立法人资格的企业；</li>
<li>已在北京市中小企业公共服务平台完成企业认证（一证通绑定）；</li>
<li>项目符合本市高精尖产业发展方向。</li></ol>
<h3>二、申报方式</h3>
<p>请点击本页上方的“申报入口”，按照《高精尖资金申报引导》登录高精尖资金申报平台，
在线填写申报书并上传申报材料（PDF或图片）。</p>
"""
SEED_GUIDE = """
<p>高精尖资金申报平台支持三种登录方式：App快捷登录（扫码）、验证码登录和账号密码登录。</p>
<p>登录成功后，进入高精尖申报平台页面，在“我的申报”中点击“新建申报”填写申报书。</p>
"""
