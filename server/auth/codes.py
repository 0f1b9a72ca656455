"""Graphic captchas and one-time codes sent by SMS or email.

A captcha must be solved before a code is sent. A code is six random digits, valid
for a few minutes, single use, bound to one purpose (login, register, reset,
change_phone), stored only as an HMAC, and void after a few wrong tries. Sending is
capped per recipient (cool-down, hourly, daily) and per IP.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import re
import secrets
from io import BytesIO

from captcha.image import ImageCaptcha

from server.broker import Broker
from server.delivery import Delivery, Message
from server.errors import Expired, Invalid, RateLimited, Unavailable
from server.keys import Clock
from server.ratelimit import RateLimits
from server.settings import Settings

PURPOSES = ("login", "register", "reset", "change_phone")
CAPTCHA_ALPHABET = "ACDEFHJKLMNPRTUVWXY34679"  # no look-alikes (0/O, 1/I, 5/S, 8/B)
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,24}")

_drawer = ImageCaptcha(width=132, height=48)

SUBJECTS = {
    "login": "登录验证码",
    "register": "注册验证码",
    "reset": "找回密码验证码",
    "change_phone": "更换手机号验证码",
}


def channel_of(destination: str) -> str:
    """ "email" for an address, "sms" otherwise."""
    return "email" if "@" in destination else "sms"


def normalise_email(email: str) -> str:
    """Lower-cased and checked, or Invalid."""
    email = email.strip().lower()
    if not EMAIL.fullmatch(email):
        raise Invalid(
            "Enter a valid email address.", details={"destination": "invalid email"}
        )
    return email


class Codes:
    """Captchas and one-time codes over the broker."""

    def __init__(
        self,
        *,
        broker: Broker,
        limits: RateLimits,
        delivery: Delivery,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._broker = broker
        self._limits = limits
        self._delivery = delivery
        self._settings = settings
        self._clock = clock
        self._key = hashlib.sha256(
            b"otp:" + settings.secret_key.get_secret_value().encode()
        ).digest()

    # -- captchas ----------------------------------------------------------------

    async def new_captcha(self) -> str:
        """A fresh captcha id; its text lives in the broker for a short while."""
        captcha_id = secrets.token_urlsafe(16)
        text = "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(4))
        await self._broker.put(
            f"captcha:{captcha_id}", text, self._settings.captcha_ttl
        )
        return captcha_id

    async def captcha_image(self, captcha_id: str) -> bytes | None:
        """The captcha drawn as PNG, or None when it is gone."""
        if len(captcha_id) > 64:
            return None
        text = await self._broker.get(f"captcha:{captcha_id}")
        if text is None:
            return None
        return await asyncio.to_thread(_draw, text)

    async def solve_captcha(self, captcha_id: str, answer: str) -> None:
        """Check an answer; the captcha is used up whether it was right or not."""
        text = await self._broker.take(f"captcha:{captcha_id[:64]}")
        if text is None:
            raise Invalid(
                "The picture code has expired; get a new one.",
                code="captcha_expired",
                details={"captcha": "expired"},
            )
        if not hmac.compare_digest(text.upper(), answer.strip().upper()[:16]):
            raise Invalid(
                "The picture code is wrong; try the new one.",
                code="bad_captcha",
                details={"captcha": "wrong"},
            )

    # -- one-time codes ----------------------------------------------------------

    def _digest(self, purpose: str, destination: str, code: str) -> str:
        message = f"{purpose}:{destination}:{code}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    async def send_code(
        self, purpose: str, destination: str, *, ip: str, deliver: bool = True
    ) -> dict[str, float]:
        """Mint and send a code, within the caps.

        With deliver=False everything happens but the message is not sent: used when
        the recipient has no account, so the answer gives nothing away.
        """
        settings = self._settings
        cooldown = f"otp:cooldown:{destination}"
        if not await self._broker.put(
            cooldown, "1", settings.code_resend_after or 0.001, only_new=True
        ):
            raise RateLimited(
                math.ceil(settings.code_resend_after),
                "Wait a minute before asking for another code.",
            )
        for rule, who in (
            ("code_ip", ip),
            ("code_hour", destination),
            ("code_day", destination),
        ):
            await self._limits.hit(rule, who)

        code = f"{secrets.randbelow(1_000_000):06d}"
        record = {
            "digest": self._digest(purpose, destination, code),
            "sent_at": self._clock(),
        }
        key = f"otp:{purpose}:{destination}"
        await self._broker.put(key, json.dumps(record), settings.code_ttl)
        await self._broker.delete(f"{key}:tries")
        if deliver:
            minutes = max(1, round(settings.code_ttl / 60))
            text = (
                f"【北京通企服版】您的{SUBJECTS[purpose]}为 {code}，{minutes}分钟内有效。"
                "请勿泄露给他人。"
            )
            message = Message(
                channel=channel_of(destination),
                to=destination,
                subject=SUBJECTS[purpose],
                text=text,
            )
            try:
                await self._delivery.send(message)
            except Unavailable:
                # Nothing arrived, so the user may ask again at once.
                await self._broker.delete(key, cooldown)
                raise
        return {
            "expires_in": settings.code_ttl,
            "resend_in": settings.code_resend_after,
        }

    async def check_code(self, purpose: str, destination: str, code: str) -> None:
        """Accept a right code once; count wrong ones and void the code at the limit."""
        key = f"otp:{purpose}:{destination}"
        raw = await self._broker.get(key)
        if raw is None:
            raise Expired(
                "The code has expired; ask for a new one.", code="code_expired"
            )
        expected = json.loads(raw)["digest"]
        given = self._digest(purpose, destination, code.strip()[:12])
        if hmac.compare_digest(expected, given):
            # Of two right answers at once, only the one that takes the key wins.
            if await self._broker.take(key) == raw:
                return
            raise Expired("The code was already used.", code="code_expired")
        tries = await self._broker.incr(f"{key}:tries", self._settings.code_ttl)
        if tries >= self._settings.code_max_tries:
            await self._broker.delete(key)
            raise Invalid(
                "Too many wrong codes; ask for a new one.",
                code="code_void",
                details={"code": "void"},
            )
        raise Invalid("The code is wrong.", code="bad_code", details={"code": "wrong"})


def _draw(text: str) -> bytes:
    image: BytesIO = _drawer.generate(text)
    return image.getvalue()
