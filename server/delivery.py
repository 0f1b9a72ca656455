"""Delivering codes and notices: SMS through an HTTP gateway, email through SMTP, or,
in development, a local outbox that the log and /dev/outbox show."""

from __future__ import annotations

import abc
import json
import logging
from dataclasses import asdict, dataclass
from email.message import EmailMessage

import aiohttp
import aiosmtplib

from server.broker import Broker
from server.errors import Unavailable
from server.settings import Settings

log = logging.getLogger(__name__)

OUTBOX_TTL = 3600.0
OUTBOX_INDEX = "outbox:index"


@dataclass(frozen=True, slots=True)
class Message:
    """One text to one phone number or email address."""

    channel: str  # "sms" or "email"
    to: str
    subject: str
    text: str


class Sender(abc.ABC):
    """Something that delivers a Message or raises Unavailable."""

    @abc.abstractmethod
    async def send(self, message: Message) -> None:
        """Deliver message."""


class OutboxSender(Sender):
    """Development only: keep the last message per recipient in the broker for an
    hour and log it, so a developer can read the code without a phone."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def send(self, message: Message) -> None:
        """Store and log; never used in production (settings refuse it)."""
        await self._broker.put(
            f"outbox:{message.to}", json.dumps(asdict(message)), OUTBOX_TTL
        )
        await self._broker.add_member(OUTBOX_INDEX, message.to, OUTBOX_TTL)
        log.info("outbox %s to %s: %s", message.channel, message.to, message.text)

    async def latest(self, to: str) -> Message | None:
        """The newest message to to, if any."""
        raw = await self._broker.get(f"outbox:{to}")
        return Message(**json.loads(raw)) if raw else None

    async def everything(self) -> list[Message]:
        """The newest message to every recipient."""
        messages = [
            await self.latest(to)
            for to in sorted(await self._broker.members(OUTBOX_INDEX))
        ]
        return [m for m in messages if m is not None]


class SmsGatewaySender(Sender):
    """POST {"to", "text"} as JSON to a gateway, with a bearer token."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._token = token

    async def send(self, message: Message) -> None:
        """One HTTP call with a timeout; a failure is Unavailable."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                body = {"to": message.to, "text": message.text}
                async with http.post(self._url, json=body, headers=headers) as response:
                    if response.status >= 300:
                        raise Unavailable(
                            "The SMS gateway refused the message.", code="sms_failed"
                        )
        except (aiohttp.ClientError, TimeoutError) as err:
            raise Unavailable(
                "The SMS gateway cannot be reached.", code="sms_failed"
            ) from err


class SmtpSender(Sender):
    """Plain-text email through an SMTP server."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, message: Message) -> None:
        """Connect, optionally STARTTLS and log in, send, quit; errors are Unavailable."""
        settings = self._settings
        email = EmailMessage()
        email["From"] = settings.smtp_sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email.set_content(message.text)
        try:
            await aiosmtplib.send(
                email,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=settings.smtp_password.get_secret_value() or None,
                start_tls=settings.smtp_starttls,
                timeout=10,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as err:
            raise Unavailable(
                "The mail server cannot be reached.", code="email_failed"
            ) from err


class Delivery:
    """Routes each message to the sender for its channel."""

    def __init__(self, settings: Settings, broker: Broker) -> None:
        self.outbox = OutboxSender(broker)
        self._sms: Sender = self.outbox
        self._email: Sender = self.outbox
        if settings.sms_gateway_url:
            self._sms = SmsGatewaySender(
                settings.sms_gateway_url, settings.sms_gateway_token.get_secret_value()
            )
        if settings.smtp_host:
            self._email = SmtpSender(settings)

    async def send(self, message: Message) -> None:
        """Deliver by SMS or email."""
        sender = self._sms if message.channel == "sms" else self._email
        await sender.send(message)
