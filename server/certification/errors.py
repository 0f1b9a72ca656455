"""The failures of talking to the unified identity provider, each a stable code.

Every way 一证通 can fail (down, slow, refusing a code, answering nonsense, a token
that does not verify) ends in one of these, so the certification pages show a
clear message and never a 500.
"""

from __future__ import annotations

from server.errors import AppError, NotFound, Unavailable


class IdentityDisabled(NotFound):
    """404 ``identity_disabled``: no identity provider is configured here."""

    code = "identity_disabled"
    message = "企业认证暂未开通。"


class IdentityUnavailable(Unavailable):
    """503 ``identity_unavailable``: the provider cannot be reached or timed out."""

    code = "identity_unavailable"
    message = "北京市统一身份认证平台暂时无法访问，请稍后再试。"


class IdentityRefused(AppError):
    """400 ``identity_refused``: this login cannot be accepted; start again.

    The provider refused the code (used, expired, wrong verifier), or its ID
    token failed a check (signature, issuer, audience, expiry, nonce). The
    details say which in ``reason``; nothing secret is in them.
    """

    status, code = 400, "identity_refused"
    message = "统一身份认证未通过，请重新认证。"

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason = reason


class IdentityBadReply(AppError):
    """502 ``identity_bad_reply``: the provider answered outside the protocol.

    A discovery document for another issuer, a reply that is not JSON, a token
    reply without an ID token, or enterprise claims that are missing or carry an
    invalid 统一社会信用代码. ``reason`` in the details says which.
    """

    status, code = 502, "identity_bad_reply"
    message = "北京市统一身份认证平台返回的信息无法识别，请稍后再试。"

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason = reason
