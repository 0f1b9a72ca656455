"""Users, passwords and sessions: who is asking, and whether they may."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from server.audit import Audit
from server.auth import store
from server.auth.codes import Codes, normalise_email
from server.auth.passwords import check_password_rules, hash_password, verify_password
from server.auth.sessions import Sessions
from server.auth.usercache import UserCache
from server.broker import Broker
from server.delivery import Delivery, Message
from server.errors import Conflict, Invalid, Locked, Unauthorized
from server.keys import Clock
from server.notify.service import Notifications
from server.settings import Settings

log = logging.getLogger(__name__)


USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,31}")
MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")


@dataclass(frozen=True, slots=True)
class User:
    """A portal user as the rest of the server sees one."""

    id: int
    username: str
    phone: str | None
    email: str | None
    display_name: str
    avatar_url: str
    user_type: str
    is_staff: bool = False

    @classmethod
    def from_row(cls, row: RowMapping) -> User:
        """Build from a users row."""
        return cls(
            id=row["id"],
            username=row["username"],
            phone=row["phone"],
            email=row["email"],
            display_name=row["display_name"],
            avatar_url=row["avatar_url"],
            user_type=row["user_type"],
            is_staff=bool(row["is_staff"]),
        )

    @property
    def name(self) -> str:
        """The name to greet the user with."""
        return self.display_name or self.username

    @property
    def masked_name(self) -> str:
        """The name with its middle hidden, for a screen someone else may see."""
        return mask(self.name)

    @property
    def masked_phone(self) -> str:
        """138****5678."""
        return f"{self.phone[:3]}****{self.phone[-4:]}" if self.phone else ""


def mask(name: str) -> str:
    """Hide all but the ends: 张三 → 张*, 张小三 → 张*三, alice → a***e."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * min(len(name) - 2, 4) + name[-1]


def channel_is_email(destination: str) -> bool:
    """Whether a normalised destination is an email address."""
    return "@" in destination


def phone_taken() -> Conflict:
    """The error for registering a phone that already has an account."""
    return Conflict(
        "该手机号已注册，请直接登录。", code="phone_taken", details={"phone": "taken"}
    )


def normalise_phone(phone: str) -> str:
    """Strip +86/0086 and spaces; raise Invalid unless a mainland mobile remains."""
    digits = re.sub(r"[\s-]", "", phone)
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    if not MAINLAND_MOBILE.fullmatch(digits):
        raise Invalid("Enter a mainland mobile number.", details={"phone": "invalid"})
    return digits


class AuthService(Sessions):
    """Accounts and sessions over the database and the broker."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        broker: Broker,
        audit: Audit,
        settings: Settings,
        clock: Clock,
        codes: Codes,
        delivery: Delivery,
        notify: Notifications,
        users: UserCache,
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._audit = audit
        self.settings = settings
        self._clock = clock
        self.codes = codes
        self._delivery = delivery
        self._notify = notify
        self.users = users

    # -- accounts ----------------------------------------------------------------

    async def create_user(
        self,
        *,
        username: str,
        password: str,
        phone: str | None = None,
        email: str | None = None,
        display_name: str = "",
        user_type: str = "individual",
        consents: dict[str, str] | None = None,
        ip: str = "",
        is_staff: bool = False,
    ) -> User:
        """Create an account; a taken username, phone or email is a Conflict naming it."""
        problems: dict[str, str] = {}
        if not USERNAME.fullmatch(username):
            problems["username"] = "3-32 letters, digits or _, starting with a letter"
        if user_type not in ("individual", "enterprise"):
            problems["user_type"] = "individual or enterprise"
        if problems:
            raise Invalid(details=problems)
        check_password_rules(password)
        values: dict[str, Any] = {
            "username": username,
            "phone": normalise_phone(phone) if phone else None,
            "email": normalise_email(email) if email else None,
            "display_name": display_name[:64],
            "user_type": user_type,
            "password_hash": await hash_password(password),
            "is_staff": is_staff,
        }
        async with self._engine.begin() as conn:
            user_id = await store.insert_user(conn, **values)
            if consents:
                await store.insert_consents(conn, user_id, ip, consents)
            row = await store.fetch_user(conn, user_id)
        assert row is not None
        self._audit.record("user_created", subject=username, user_id=user_id, ip=ip)
        return User.from_row(row)

    async def get_user(self, user_id: int) -> User | None:
        """One user, or None; from this process's copy when it has a fresh one."""
        user = self.users.get(user_id)
        if user is not None:
            return user
        generation = self.users.generation
        async with self._engine.connect() as conn:
            row = await store.fetch_user(conn, user_id)
        if row is None:
            return None
        user = User.from_row(row)
        self.users.keep(user, generation)
        return user

    async def _update_user(self, user_id: int, **values: Any) -> None:
        """Write columns of a user and drop every node's copy of it."""
        async with self._engine.begin() as conn:
            await store.update_user(conn, user_id, **values)
        await self.users.changed(user_id)

    async def find_user(self, account: str) -> User | None:
        """One user by username, phone or email, or None."""
        async with self._engine.connect() as conn:
            row = await store.fetch_user_by_account(conn, account)
        return User.from_row(row) if row else None

    async def username_taken(self, username: str) -> bool:
        """Whether a username is in use (for the registration form's live check)."""
        async with self._engine.connect() as conn:
            return await store.username_exists(conn, username)

    async def phone_taken(self, phone: str) -> bool:
        """Whether a phone number is registered."""
        async with self._engine.connect() as conn:
            return await store.phone_exists(conn, normalise_phone(phone))

    # -- passwords and lockout ---------------------------------------------------

    async def authenticate(self, account: str, password: str, *, ip: str = "") -> User:
        """The user whose username, phone or email and password match.

        Unknown accounts and wrong passwords fail alike, in the same time. After
        lockout_threshold wrong passwords in a row the account is locked for
        lockout_seconds: during the lock the password is not even checked, so the
        answer says nothing about it, and failures cannot extend the lock.
        """
        account = account.strip()[:254]
        async with self._engine.connect() as conn:
            row = await store.fetch_user_by_account(conn, account)
        if row is None:
            return await self._unknown_account(account, password)
        now = self._clock()
        if row["locked_until"] is not None and now < row["locked_until"]:
            raise Locked()
        if await verify_password(row["password_hash"], password):
            if row["failed_logins"] or row["locked_until"] is not None:
                async with self._engine.begin() as conn:
                    await store.clear_failures(conn, row["id"])
            return User.from_row(row)
        async with self._engine.begin() as conn:
            locked_until = await store.record_failure(
                conn,
                row["id"],
                now=now,
                threshold=self.settings.lockout_threshold,
                lock_for=self.settings.lockout_seconds,
            )
        if locked_until is not None:
            self._audit.record(
                "account_locked", subject=row["username"], user_id=row["id"], ip=ip
            )
            raise Locked()
        raise Unauthorized("账号或密码错误。", code="bad_credentials")

    async def _unknown_account(self, account: str, password: str) -> User:
        """Answer for a name nobody has exactly as for a real one, lock included."""
        await verify_password(None, password)
        tag = hashlib.sha256(account.lower().encode()).hexdigest()[:32]
        if await self._broker.get(f"lock:ghost:{tag}"):
            raise Locked()
        lock_for = self.settings.lockout_seconds
        failures = await self._broker.incr(f"lock:ghost-count:{tag}", lock_for)
        if failures >= self.settings.lockout_threshold:
            await self._broker.put(f"lock:ghost:{tag}", "1", lock_for, only_new=True)
            await self._broker.delete(f"lock:ghost-count:{tag}")
            raise Locked()
        raise Unauthorized("账号或密码错误。", code="bad_credentials")

    async def change_password(
        self, user: User, old: str, new: str, *, keep: str | None = None, ip: str = ""
    ) -> None:
        """Change a password given the old one; other sessions end."""
        async with self._engine.connect() as conn:
            row = await store.fetch_user(conn, user.id)
        if row is None or not await verify_password(row["password_hash"], old):
            raise Invalid(
                "原密码错误。",
                code="bad_old_password",
                details={"old_password": "wrong"},
            )
        await self._set_password(user, new, keep=keep, ip=ip, event="password_changed")

    async def reset_password(
        self, phone: str, code: str, new: str, *, ip: str = ""
    ) -> None:
        """Forgotten password: a reset code to the phone sets a new one.

        Every session and app token of the user ends; the user is told by SMS. The
        caller is not logged in: the next step is an ordinary login.
        """
        phone = normalise_phone(phone)
        check_password_rules(new)
        await self.codes.check_code("reset", phone, code)
        user = await self.find_user(phone)
        if user is None:
            raise Invalid(
                "The code is wrong.", code="bad_code", details={"code": "wrong"}
            )
        await self._set_password(user, new, keep=None, ip=ip, event="password_reset")

    async def _set_password(
        self, user: User, new: str, *, keep: str | None, ip: str, event: str
    ) -> None:
        check_password_rules(new, field="new_password")
        password_hash = await hash_password(new)
        await self._update_user(
            user.id, password_hash=password_hash, failed_logins=0, locked_until=None
        )
        ended = await self.revoke_all(user, keep=keep)
        self._audit.record(
            event, subject=user.username, user_id=user.id, ip=ip, sessions_ended=ended
        )
        await self._notify.notify(
            user.id,
            "security",
            "密码已修改",
            f"您的登录密码已修改，{ended}个其他设备已退出登录。",
            link="/center/",
        )
        await self._tell(
            user,
            "密码已修改",
            "【北京通企服版】您的登录密码刚刚被修改。如非本人操作，请立即找回密码。",
        )

    async def _tell(self, user: User, subject: str, text: str) -> None:
        """Send a notice to the user's phone (or email); a failure is only logged."""
        to = user.phone or user.email
        if to is None:
            return
        channel = "sms" if user.phone else "email"
        try:
            await self._delivery.send(
                Message(channel=channel, to=to, subject=subject, text=text)
            )
        except Exception:  # a notice must not undo the change it reports
            log.exception("could not notify user %s", user.id)

    # -- one-time codes ----------------------------------------------------------

    async def send_code(
        self, purpose: str, destination: str, *, ip: str
    ) -> dict[str, float]:
        """Send a code for purpose; the answer is the same whether or not the account
        exists (for login and reset), so it cannot be used to probe for accounts."""
        destination = self.normalise_destination(destination)
        exists = await self.find_user(destination) is not None
        if purpose == "register":
            if channel_is_email(destination):
                raise Invalid(
                    "Register with a phone number.", details={"destination": "phone"}
                )
            if exists:
                raise phone_taken()
            return await self.codes.send_code(purpose, destination, ip=ip)
        if purpose == "change_phone" and exists:
            raise phone_taken()
        deliver = exists if purpose in ("login", "reset") else True
        return await self.codes.send_code(purpose, destination, ip=ip, deliver=deliver)

    @staticmethod
    def normalise_destination(destination: str) -> str:
        """A phone number or an email address, normalised, or Invalid."""
        destination = destination.strip()
        if "@" in destination:
            return normalise_email(destination)
        try:
            return normalise_phone(destination)
        except Invalid as err:
            raise Invalid(
                "Enter a mainland mobile number or an email address.",
                details={"destination": "invalid"},
            ) from err

    async def register(
        self,
        *,
        phone: str,
        code: str,
        username: str,
        password: str,
        user_type: str,
        ip: str,
    ) -> User:
        """Phone + SMS code registration with consent to the current agreements."""
        phone = normalise_phone(phone)
        if not USERNAME.fullmatch(username):
            raise Invalid(
                details={
                    "username": "3-32 letters, digits or _, starting with a letter"
                }
            )
        check_password_rules(password)
        await self.codes.check_code("register", phone, code)
        consents = {
            "terms": self.settings.terms_version,
            "privacy": self.settings.privacy_version,
        }
        return await self.create_user(
            username=username,
            password=password,
            phone=phone,
            user_type=user_type,
            consents=consents,
            ip=ip,
        )

    async def code_login(self, destination: str, code: str) -> User:
        """Log in with a code sent to a phone or email; a lock does not apply here."""
        destination = self.normalise_destination(destination)
        await self.codes.check_code("login", destination, code)
        user = await self.find_user(destination)
        if user is None:
            raise Invalid(
                "The code is wrong.", code="bad_code", details={"code": "wrong"}
            )
        return user

    async def change_phone(
        self, user: User, *, password: str, new_phone: str, code: str, ip: str = ""
    ) -> User:
        """Move the account to a new phone: the password again, and a code sent there."""
        async with self._engine.connect() as conn:
            row = await store.fetch_user(conn, user.id)
        if row is None or not await verify_password(row["password_hash"], password):
            raise Invalid(
                "密码错误。", code="bad_old_password", details={"password": "wrong"}
            )
        new_phone = normalise_phone(new_phone)
        await self.codes.check_code("change_phone", new_phone, code)
        await self._update_user(user.id, phone=new_phone)
        self._audit.record(
            "phone_changed", subject=user.username, user_id=user.id, ip=ip
        )
        await self._tell(
            user,
            "手机号已更换",
            "【北京通企服版】您的账号已更换绑定手机号。如非本人操作，请联系客服。",
        )
        updated = await self.get_user(user.id)
        assert updated is not None
        return updated

    async def update_profile(self, user: User, *, display_name: str) -> User:
        """Change what the user is called."""
        await self._update_user(user.id, display_name=display_name.strip()[:64])
        updated = await self.get_user(user.id)
        assert updated is not None
        return updated
