"""The error family: every failure a client can see, with one shape and one renderer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from server import jsontext

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AppError(Exception):
    """Base of every error a client sees: an HTTP status and a stable snake_case code."""

    status = 500
    code = "internal"
    message = "Something went wrong on our side."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        """The body clients get: {"error": {"code", "message"[, "details"]}}."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class BadRequest(AppError):
    """400: the request cannot be parsed (not JSON, wrong types)."""

    status, code, message = 400, "bad_request", "The request could not be understood."


class Invalid(AppError):
    """422: the request parsed but a field breaks a rule; details name the fields."""

    status, code, message = 422, "invalid", "Some fields are not valid."


class Unauthorized(AppError):
    """401: credentials are missing, wrong or revoked."""

    status, code, message = 401, "unauthorized", "Authentication is required."


class Forbidden(AppError):
    """403: authenticated, but not allowed (wrong user, foreign Origin)."""

    status, code, message = 403, "forbidden", "This action is not allowed."


class NotFound(AppError):
    """404: no such resource, or not one this client may know of."""

    status, code, message = 404, "not_found", "Nothing was found here."


class MethodNotAllowed(AppError):
    """405: the resource exists, the method does not."""

    status, code, message = (
        405,
        "method_not_allowed",
        "This method is not allowed here.",
    )


class Conflict(AppError):
    """409: the resource is in a state that forbids this action."""

    status, code, message = (
        409,
        "wrong_state",
        "The request conflicts with the current state.",
    )


class Expired(AppError):
    """410: the resource existed but its time is up."""

    status, code, message = 410, "expired", "This has expired."


class Locked(AppError):
    """423: the account is locked for a while after too many wrong passwords."""

    status, code, message = 423, "locked", "账号已锁定，请稍后再试，或使用验证码登录。"


class TooLarge(AppError):
    """413: the body is larger than this endpoint accepts."""

    status, code, message = 413, "too_large", "The request body is too large."


class RateLimited(AppError):
    """429: too many requests; Retry-After says when to try again."""

    status, code, message = 429, "rate_limited", "Too many requests; try again later."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        retry_after = max(1, retry_after)
        super().__init__(
            message,
            details={"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


class Unavailable(AppError):
    """503: a backend (database or broker) cannot be reached right now."""

    status, code, message = 503, "unavailable", "The service is unavailable; try again."


_HTTP_ERRORS: dict[int, type[AppError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    413: TooLarge,
}


def wants_json(request: web.Request) -> bool:
    """API and WebSocket paths answer in JSON; pages answer with an error page."""
    path = request.path
    if path.startswith(("/api/", "/ws", "/healthz", "/readyz")):
        return True
    return "application/json" in request.headers.get("Accept", "")


def render(request: web.Request, error: AppError) -> web.Response:
    """Render one error as JSON or as the error page, with its headers."""
    if wants_json(request):
        response = jsontext.response(error.to_json(), status=error.status)
    else:
        from server.pages import render as render_page  # pages import this module

        response = render_page(
            "errors/error.html",
            request,
            {"error": error, "status": error.status},
            status=error.status,
        )
    response.headers.update(error.headers)
    return response


def from_http(exc: web.HTTPException) -> AppError:
    """Translate aiohttp's own HTTP errors (unknown route, body too large)."""
    kind = _HTTP_ERRORS.get(exc.status, AppError)
    error = kind()
    if kind is AppError:
        error.status = exc.status
        error.code = (exc.reason or "error").lower().replace(" ", "_")
        error.message = exc.reason or error.message
    return error


@web.middleware
async def error_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Render every AppError and HTTP error in the shared shape; log the unexpected."""
    try:
        return await handler(request)
    except AppError as error:
        return render(request, error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render(request, from_http(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render(request, AppError())
