"""The failures of third-party login, each with a stable code the error page shows.

Every way a provider can fail ends in one of these, so a provider that is down,
slow or confused shows a clear page instead of a 500.
"""

from __future__ import annotations

from server.errors import AppError, Conflict, Expired, Forbidden, NotFound, Unavailable


class UnknownProvider(NotFound):
    """404: the provider in the URL is not configured here."""

    code, message = "unknown_provider", "This login provider is not available."


class StateMissing(Forbidden):
    """403: no login in progress in this browser (other browser, expired, replayed)."""

    code = "oauth_state_missing"
    message = "This login was not started in this browser, or it took too long."


class StateMismatch(Forbidden):
    """403: the provider sent back a state this browser's login did not send."""

    code = "oauth_state_mismatch"
    message = "The login could not be verified; start again."


class ProviderDenied(Forbidden):
    """403: the user chose 拒绝 at the provider, or the provider refused to ask."""

    code = "oauth_denied"
    message = "The login was declined at the provider."


class ProviderRejected(AppError):
    """502: the provider refused the code: used, expired, wrong verifier or client."""

    status, code = 502, "provider_rejected"
    message = "The provider did not accept this login; start again."


class ProviderBadReply(AppError):
    """502: the provider answered with something that is not what OAuth promises."""

    status, code = 502, "provider_bad_reply"
    message = "The provider gave an answer we could not use; try again later."


class ProviderUnavailable(Unavailable):
    """503: the provider cannot be reached, or did not answer in time."""

    code, message = "provider_unavailable", "The provider cannot be reached; try again."


class IdentityNotLinked(Conflict):
    """409: the provider account is linked to no account here yet.

    The details carry a short-lived link token for POST /api/app/oauth/link.
    """

    code = "identity_not_linked"
    message = "This provider account is not linked to an account yet."


class IdentityTaken(Conflict):
    """409: the provider account is already linked, or being linked right now."""

    code = "identity_taken"
    message = "This provider account is already linked to an account."


class LinkExpired(Expired):
    """410: the link step timed out, or was already completed."""

    code = "link_expired"
    message = "Linking took too long or is already done; log in again."
