"""The rules of a declaration, from draft to decision.

    draft ──submit──▶ submitted ──accept──▶ in_review ──approve──▶ approved
      ▲                  │                     │ └──reject──▶ rejected
      └────withdraw──────┘                     └──return──▶ returned ──submit──▶ …

The enterprise (whoever currently holds its certification) edits drafts and
returned declarations, submits inside the program's window and may withdraw until
staff accept. Staff accept, return with comments, approve or reject. Every change is
a compare-and-set on the status, a line of history, an audit event and, for staff
decisions, a notification to the enterprise.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.audit import Audit
from server.auth.service import User
from server.certification import store as cert_store
from server.certification.service import Certification
from server.declarations import store
from server.declarations.files import ALLOWED_TEXT, safe_filename, sniff
from server.declarations.storage import AttachmentStorage, checksum
from server.errors import AppError, Conflict, Expired, Invalid, NotFound, TooLarge
from server.keys import Clock
from server.notify.service import Notifications
from server.zone import store as zone_store
from server.zone.access import NotCertified
from server.zone.service import as_utc, beijing_text, phase, require_staff

log = logging.getLogger(__name__)

CATEGORIES = (
    "新一代信息技术",
    "集成电路",
    "医药健康",
    "智能装备",
    "节能环保",
    "新能源智能汽车",
    "新材料",
    "人工智能",
    "软件和信息服务",
    "科技服务",
)
STATUS_TEXT = {
    "draft": "草稿",
    "submitted": "已提交",
    "in_review": "审核中",
    "returned": "退回修改",
    "approved": "审核通过",
    "rejected": "未通过",
}
ACTION_TEXT = {
    "create": "新建",
    "submit": "提交",
    "withdraw": "撤回",
    "accept": "受理",
    "return": "退回修改",
    "approve": "通过",
    "reject": "不通过",
}
EDITABLE = ("draft", "returned")
TEXT_FIELDS = (
    "project_name",
    "category",
    "contact_name",
    "contact_phone",
    "description",
)
AMOUNT_FIELDS = ("total_investment", "amount_requested")
PHONE = re.compile(r"1[3-9]\d{9}|0\d{2,3}-?\d{7,8}")
MAX_ATTACHMENTS = 20
# Staff decisions: from which statuses, to which, and whether a comment is required.
REVIEW: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "accept": (("submitted",), "in_review", False),
    "return": (("in_review",), "returned", True),
    "approve": (("in_review",), "approved", False),
    "reject": (("in_review",), "rejected", True),
}
NOTICE = {
    "accept": ("申报书已受理", "您的申报书“{name}”已进入审核。"),
    "return": ("申报书被退回修改", "您的申报书“{name}”被退回修改：{comment}"),
    "approve": ("申报书审核通过", "您的申报书“{name}”已审核通过。"),
    "reject": ("申报书未通过审核", "您的申报书“{name}”未通过审核：{comment}"),
}


class UnsupportedType(AppError):
    """415: the attachment is not a PDF or an image, judged by its content."""

    status, code = 415, "unsupported_type"
    message = f"附件只能是 {ALLOWED_TEXT} 文件（按文件内容识别，改扩展名无效）。"


def to_units(amount: Decimal | None) -> int | None:
    """万元 with two decimals as whole hundredths of 万元 (100 元), as stored."""
    return None if amount is None else int((amount * 100).to_integral_value())


def from_units(units: int | None) -> str | None:
    """Stored hundredths of 万元 back to a 万元 string, e.g. "1200.50"."""
    return None if units is None else f"{Decimal(units) / 100:.2f}"


def problems_of(row: RowMapping | dict[str, Any], attachments: int) -> dict[str, str]:
    """Every field that stops a submission, each with what is wrong (empty if none)."""
    problems: dict[str, str] = {}
    if not 2 <= len(row["project_name"] or "") <= 128:
        problems["project_name"] = "请填写项目名称（2到128个字）"
    if row["category"] not in CATEGORIES:
        problems["category"] = "请选择项目类别"
    total, asked = row["total_investment"], row["amount_requested"]
    if not total or total <= 0:
        problems["total_investment"] = "请填写项目总投资（万元，大于0）"
    if not asked or asked <= 0:
        problems["amount_requested"] = "请填写申请资金（万元，大于0）"
    elif total and asked > total:
        problems["amount_requested"] = "申请资金不能超过项目总投资"
    if not 2 <= len(row["contact_name"] or "") <= 32:
        problems["contact_name"] = "请填写联系人"
    if not PHONE.fullmatch(row["contact_phone"] or ""):
        problems["contact_phone"] = "请填写手机号或带区号的固定电话"
    if len((row["description"] or "").strip()) < 10:
        problems["description"] = "请填写项目简介（至少10个字）"
    if attachments < 1:
        problems["attachments"] = f"请上传至少一个申报材料（{ALLOWED_TEXT}）"
    return problems


def declaration_json(row: RowMapping) -> dict[str, Any]:
    """A declaration as pages and clients get it."""
    return {
        "id": row["id"],
        "program_id": row["program_id"],
        "program_title": row["program_title"],
        "enterprise_name": row["enterprise_name"],
        "uscc": row["uscc"],
        "project_name": row["project_name"],
        "category": row["category"],
        "total_investment": from_units(row["total_investment"]),
        "amount_requested": from_units(row["amount_requested"]),
        "contact_name": row["contact_name"],
        "contact_phone": row["contact_phone"],
        "description": row["description"],
        "status": row["status"],
        "status_text": STATUS_TEXT[row["status"]],
        "editable": row["status"] in EDITABLE,
        "review_comment": row["review_comment"],
        "submitted_at": as_utc(row["submitted_at"]).timestamp()
        if row["submitted_at"]
        else None,
        "updated_text": beijing_text(row["updated_at"]),
        "closes_text": beijing_text(row["program_closes_at"]),
    }


def _event_json(row: RowMapping) -> dict[str, Any]:
    return {
        "action": row["action"],
        "action_text": ACTION_TEXT[row["action"]],
        "from_status": row["from_status"],
        "to_status": row["to_status"],
        "status_text": STATUS_TEXT[row["to_status"]],
        "comment": row["comment"],
        "actor_id": row["actor_id"],
        "at": as_utc(row["at"]).timestamp(),
        "at_text": beijing_text(row["at"]),
    }


def _attachment_json(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "filename": row["filename"],
        "content_type": row["content_type"],
        "size": row["size"],
        "sha256": row["sha256"],
        "url": f"/api/declarations/{row['declaration_id']}/attachments/{row['id']}",
    }


class Declarations:
    """Create, edit, submit, withdraw and review declarations; keep their files."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        audit: Audit,
        notify: Notifications,
        cert: Certification,
        storage: AttachmentStorage,
        clock: Clock,
        max_bytes: int,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._notify = notify
        self._cert = cert
        self._storage = storage
        self._clock = clock
        self.max_bytes = max_bytes

    async def _binding(self, user: User) -> dict[str, Any]:
        binding = await self._cert.binding(user.id)
        if binding is None:
            raise NotCertified(details={"next": "/center/?need=certification"})
        return binding

    async def _mine(
        self,
        conn: AsyncConnection,
        user: User,
        declaration_id: int,
        *,
        staff_may: bool = False,
    ) -> RowMapping:
        """The declaration if the user's enterprise owns it; 404 for everyone else.

        A foreign declaration answers exactly like a missing one, so ids reveal nothing.
        """
        row = await store.fetch_one(conn, declaration_id)
        if row is not None and staff_may and user.is_staff:
            return row
        binding = await cert_store.fetch_live_binding(conn, user_id=user.id)
        if row is None or binding is None or binding["uscc"] != row["uscc"]:
            raise NotFound("没有找到这份申报书。", code="unknown_declaration")
        return row

    def _check_window(self, program: RowMapping | dict[str, Any]) -> None:
        state = phase(program, self._clock())
        if state == "upcoming":
            raise Conflict(
                f"申报尚未开始，开始时间：{beijing_text(program['opens_at'])}。",
                code="window_not_open",
            )
        if state == "closed":
            raise Expired("申报已截止。", code="window_closed")

    async def mine(self, user: User) -> list[dict[str, Any]]:
        """The declarations of the user's enterprise (none when not certified)."""
        binding = await self._cert.binding(user.id)
        if binding is None:
            return []
        async with self._engine.connect() as conn:
            rows = await store.fetch_many(conn, uscc=binding["uscc"])
        return [declaration_json(r) for r in rows]

    async def get(self, user: User, declaration_id: int) -> dict[str, Any]:
        """One declaration with history and attachments (its enterprise or staff)."""
        async with self._engine.connect() as conn:
            row = await self._mine(conn, user, declaration_id, staff_may=True)
            events = await store.fetch_events(conn, declaration_id)
            files = await store.fetch_attachments(conn, declaration_id)
        data = declaration_json(row)
        data["history"] = [_event_json(e) for e in events]
        data["attachments"] = [_attachment_json(f) for f in files]
        data["problems"] = (
            problems_of(row, len(files)) if row["status"] in EDITABLE else {}
        )
        return data

    async def create(
        self, user: User, program_id: int, fields: dict[str, Any], *, ip: str = ""
    ) -> int:
        """Start a draft for an open program, named after the certified enterprise."""
        binding = await self._binding(user)
        values = _clean_fields(fields)
        async with self._engine.begin() as conn:
            program = await _program(conn, program_id)
            self._check_window(program)
            existing = await store.fetch_existing(conn, program_id, binding["uscc"])
            if existing is not None:
                raise store.AlreadyDeclared(details={"id": existing})
            declaration_id = await store.insert(
                conn,
                program_id=program_id,
                uscc=binding["uscc"],
                enterprise_name=binding["enterprise_name"],
                created_by=user.id,
                **values,
            )
            await store.insert_event(
                conn,
                declaration_id=declaration_id,
                action="create",
                from_status=None,
                to_status="draft",
                actor_id=user.id,
            )
        self._audit.record(
            "declaration_created",
            subject=binding["uscc"],
            user_id=user.id,
            ip=ip,
            declaration=declaration_id,
            program=program_id,
        )
        return declaration_id

    async def save(
        self, user: User, declaration_id: int, fields: dict[str, Any], *, ip: str = ""
    ) -> None:
        """Save a draft (or a returned declaration) as often as the user likes."""
        values = _clean_fields(fields)
        async with self._engine.begin() as conn:
            row = await self._mine(conn, user, declaration_id)
            if values and not await store.update_fields(
                conn, declaration_id, EDITABLE, **values
            ):
                raise _not_editable(row["status"])
            if not values and row["status"] not in EDITABLE:
                raise _not_editable(row["status"])
        self._audit.record(
            "declaration_saved",
            subject=row["uscc"],
            user_id=user.id,
            ip=ip,
            declaration=declaration_id,
            fields=sorted(values),
        )

    async def submit(self, user: User, declaration_id: int, *, ip: str = "") -> None:
        """Submit once: inside the window, every field valid, at least one attachment.

        A declaration that staff returned may be resubmitted after the window closes,
        since staff asked for the change.
        """
        async with self._engine.begin() as conn:
            row = await self._mine(conn, user, declaration_id)
            if row["status"] not in EDITABLE:
                raise Conflict("这份申报书已经提交过了。", code="already_submitted")
            if row["status"] == "draft":
                self._check_window(_program_of(row))
            files = await store.fetch_attachments(conn, declaration_id)
            problems = problems_of(row, len(files))
            if problems:
                raise Invalid("申报书还有未填写或填写有误的内容。", details=problems)
            now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
            await self._move(
                conn, row, "submit", "submitted", user, "", submitted_at=now
            )
        self._audit.record(
            "declaration_submitted",
            subject=row["uscc"],
            user_id=user.id,
            ip=ip,
            declaration=declaration_id,
        )
        await self._notify.notify(
            user.id,
            "declaration",
            "申报书已提交",
            f"您的申报书“{row['project_name']}”已提交，请等待审核。",
            link=f"/declare/declarations/{declaration_id}",
        )

    async def withdraw(self, user: User, declaration_id: int, *, ip: str = "") -> None:
        """Take a submitted declaration back to draft, before staff accept it."""
        async with self._engine.begin() as conn:
            row = await self._mine(conn, user, declaration_id)
            if row["status"] != "submitted":
                raise Conflict(
                    "只有已提交、尚未受理的申报书可以撤回。", code="cannot_withdraw"
                )
            await self._move(conn, row, "withdraw", "draft", user, "")
        self._audit.record(
            "declaration_withdrawn",
            subject=row["uscc"],
            user_id=user.id,
            ip=ip,
            declaration=declaration_id,
        )

    async def review(
        self,
        staff: User,
        declaration_id: int,
        action: str,
        comment: str = "",
        *,
        ip: str = "",
    ) -> str:
        """A staff decision; returns the new status and tells the enterprise."""
        require_staff(staff)
        if action not in REVIEW:
            raise NotFound("No such action.", code="unknown_action")
        from_, to, needs_comment = REVIEW[action]
        comment = comment.strip()
        if needs_comment and not 2 <= len(comment) <= 1000:
            raise Invalid(
                "请填写审核意见。", details={"comment": "2 to 1000 characters"}
            )
        async with self._engine.begin() as conn:
            row = await store.fetch_one(conn, declaration_id)
            if row is None:
                raise NotFound("没有找到这份申报书。", code="unknown_declaration")
            if row["status"] not in from_:
                raise Conflict(
                    f"申报书当前状态为“{STATUS_TEXT[row['status']]}”，不能"
                    f"{ACTION_TEXT[action]}。",
                    code="wrong_state",
                )
            extra = {"review_comment": comment[:1000]} if action != "accept" else {}
            await self._move(
                conn, row, action, to, staff, comment, allowed=from_, **extra
            )
            holder = await cert_store.fetch_live_binding(conn, uscc=row["uscc"])
        self._audit.record(
            f"declaration_{action}",
            subject=row["uscc"],
            user_id=staff.id,
            ip=ip,
            declaration=declaration_id,
            comment=comment[:200],
        )
        recipient = holder["user_id"] if holder is not None else row["created_by"]
        if recipient is not None:
            title, body = NOTICE[action]
            await self._notify.notify(
                recipient,
                "declaration",
                title,
                body.format(
                    name=row["project_name"] or row["program_title"], comment=comment
                ),
                link=f"/declare/declarations/{declaration_id}",
            )
        return to

    async def queue(self, staff: User, status: str | None) -> list[dict[str, Any]]:
        """Declarations for staff, by status (all but drafts when none is given)."""
        require_staff(staff)
        statuses = (
            (status,)
            if status in STATUS_TEXT
            else tuple(s for s in STATUS_TEXT if s != "draft")
        )
        async with self._engine.connect() as conn:
            rows = await store.fetch_many(conn, statuses=statuses)
        return [declaration_json(r) for r in rows]

    async def _move(
        self,
        conn: AsyncConnection,
        row: RowMapping,
        action: str,
        to: str,
        actor: User,
        comment: str,
        *,
        allowed: tuple[str, ...] | None = None,
        **values: Any,
    ) -> None:
        """Compare-and-set the status and append the history line, in one go."""
        from_ = allowed or (row["status"],)
        if not await store.move(conn, row["id"], from_=from_, to=to, **values):
            raise Conflict("申报书的状态刚刚被修改，请刷新后重试。", code="wrong_state")
        await store.insert_event(
            conn,
            declaration_id=row["id"],
            action=action,
            from_status=row["status"],
            to_status=to,
            actor_id=actor.id,
            comment=comment[:1000],
        )

    async def add_attachment(
        self,
        user: User,
        declaration_id: int,
        filename: str,
        data: bytes,
        *,
        ip: str = "",
    ) -> dict[str, Any]:
        """Keep an uploaded file: a PDF or image by content, within the size limit.

        Ownership is checked first, so a foreign declaration is a 404 whatever is sent.
        """
        async with self._engine.connect() as conn:
            row = await self._mine(conn, user, declaration_id)
            count = len(await store.fetch_attachments(conn, declaration_id))
        if row["status"] not in EDITABLE:
            raise _not_editable(row["status"])
        if count >= MAX_ATTACHMENTS:
            raise Conflict(
                f"每份申报书最多上传{MAX_ATTACHMENTS}个附件。",
                code="too_many_attachments",
            )
        if len(data) > self.max_bytes:
            raise TooLarge(
                f"附件不能超过 {self.max_bytes // (1024 * 1024) or 1} MB。",
                code="attachment_too_large",
                details={"max_bytes": self.max_bytes},
            )
        if not data:
            raise Invalid("附件是空的。", details={"file": "empty"})
        content_type = sniff(data)
        if content_type is None:
            raise UnsupportedType(details={"allowed": ALLOWED_TEXT})
        name = safe_filename(filename, content_type)
        sha256 = checksum(data)
        key = await self._storage.put(data, sha256)
        try:
            async with self._engine.begin() as conn:
                attachment_id = await store.insert_attachment(
                    conn,
                    declaration_id=declaration_id,
                    filename=name,
                    content_type=content_type,
                    size=len(data),
                    sha256=sha256,
                    storage_key=key,
                    uploaded_by=user.id,
                )
        except BaseException:
            # The row is the only reference to the file: remove it, not orphan it.
            await self._storage.delete(key)
            raise
        self._audit.record(
            "attachment_added",
            subject=row["uscc"],
            user_id=user.id,
            ip=ip,
            declaration=declaration_id,
            sha256=sha256,
            size=len(data),
        )
        return {
            "id": attachment_id,
            "filename": name,
            "content_type": content_type,
            "size": len(data),
            "sha256": sha256,
            "url": f"/api/declarations/{declaration_id}/attachments/{attachment_id}",
        }

    async def attachment(
        self, user: User, declaration_id: int, attachment_id: int
    ) -> tuple[dict[str, Any], bytes]:
        """An attachment's details and bytes, for its enterprise or staff."""
        async with self._engine.connect() as conn:
            await self._mine(conn, user, declaration_id, staff_may=True)
            row = await store.fetch_attachment(conn, declaration_id, attachment_id)
        if row is None:
            raise NotFound("没有找到这个附件。", code="unknown_attachment")
        data = await self._storage.get(row["storage_key"], row["sha256"])
        return _attachment_json(row), data

    async def remove_attachment(
        self, user: User, declaration_id: int, attachment_id: int, *, ip: str = ""
    ) -> None:
        """Delete an attachment of an editable declaration: the row, then the file."""
        async with self._engine.begin() as conn:
            row = await self._mine(conn, user, declaration_id)
            if row["status"] not in EDITABLE:
                raise _not_editable(row["status"])
            attachment = await store.fetch_attachment(
                conn, declaration_id, attachment_id
            )
            if attachment is None:
                raise NotFound("没有找到这个附件。", code="unknown_attachment")
            await store.delete_attachment(conn, attachment_id)
        try:
            await self._storage.delete(attachment["storage_key"])
        except OSError:
            log.error("attachment %s deleted but its file stayed", attachment_id)
        self._audit.record(
            "attachment_removed",
            subject=row["uscc"],
            user_id=user.id,
            ip=ip,
            declaration=declaration_id,
            sha256=attachment["sha256"],
        )


def _clean_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Trim text, convert amounts and check formats of what was given (not presence)."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in TEXT_FIELDS:
        if name in fields:
            values[name] = (fields[name] or "").strip()
    for name in AMOUNT_FIELDS:
        if name in fields:
            values[name] = to_units(fields[name])
    if values.get("category") and values["category"] not in CATEGORIES:
        problems["category"] = "请选择项目类别"
    if values.get("contact_phone") and not PHONE.fullmatch(values["contact_phone"]):
        problems["contact_phone"] = "请填写手机号或带区号的固定电话"
    if problems:
        raise Invalid(details=problems)
    return values


def _not_editable(status: str) -> Conflict:
    return Conflict(
        f"申报书当前状态为“{STATUS_TEXT[status]}”，不能修改。", code="not_editable"
    )


def _program_of(row: RowMapping) -> dict[str, Any]:
    return {
        "status": row["program_status"],
        "opens_at": row["program_opens_at"],
        "closes_at": row["program_closes_at"],
    }


async def _program(conn: AsyncConnection, program_id: int) -> RowMapping:
    program = await zone_store.fetch_program(conn, program_id)
    if program is None or program["status"] != "published":
        raise NotFound("没有找到这个申报项目。", code="unknown_program")
    return program
