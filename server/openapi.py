"""The OpenAPI document of every JSON route, served at /api/openapi.json.

Request bodies come from the same pydantic models the views validate with, so the
document cannot drift from what the server accepts. A test fails when a JSON route
is missing here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from server import __version__
from server.auth.account_views import (
    ChangePassword, ChangePhone, CodeLogin, CodeRequest, Profile, Register, Reset,
)
from server.auth.views import AppLogin
from server.oauth.api import AppOAuthCode, AppOAuthLink
from server.certification.views import Rejection, UnbindRequest
from server.qr.views import CreateSession, Redeem

ERROR = {"$ref": "#/components/schemas/Error"}


def _op(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    ok: int = 200,
    errors: tuple[int, ...] = (),
    security: str | None = None,
    params: tuple[dict[str, Any], ...] = (),
    ok_type: str = "application/json",
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {str(ok): {"description": "success", "content": {ok_type: {}}}},
    }
    for status in errors:
        op["responses"][str(status)] = {
            "description": "error",
            "content": {"application/json": {"schema": ERROR}},
        }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
        }
    if security:
        op["security"] = [{security: []}]
    if params:
        op["parameters"] = list(params)
    return op


REQUEST_ID = {"name": "request_id", "in": "path", "required": True,
              "schema": {"type": "integer"}}
QR_ID = {"name": "qr_id", "in": "path", "required": True, "schema": {"type": "string"}}
WAIT = {"name": "wait", "in": "query", "schema": {"type": "number", "minimum": 0}}
SINCE = {"name": "since", "in": "query", "schema": {"type": "integer"}}
PROVIDER = {"name": "provider", "in": "path", "required": True,
            "schema": {"type": "string"}}

PATHS: dict[str, dict[str, Any]] = {
    "/healthz": {"get": _op("Liveness")},
    "/readyz": {"get": _op("Readiness: database and broker", errors=(503,))},
    "/api/openapi.json": {"get": _op("This document")},
    "/api/qr/sessions": {
        "post": _op("Create a QR session for a waiting page", body=CreateSession, ok=201,
                    errors=(401, 409, 422, 429))
    },
    "/api/qr/sessions/{qr_id}": {
        "get": _op("Read or long-poll a session's state (watch token)", security="watch",
                   params=(QR_ID, WAIT, SINCE), errors=(400, 401, 404, 429))
    },
    "/api/qr/sessions/{qr_id}/image": {
        "get": _op("The QR code as SVG", params=(QR_ID,), errors=(404,),
                   ok_type="image/svg+xml")
    },
    "/api/qr/sessions/{qr_id}/redeem": {
        "post": _op("Trade the login ticket for a session cookie", body=Redeem,
                    security="watch", params=(QR_ID,),
                    errors=(400, 401, 404, 409, 410, 422, 429))
    },
    "/api/app/login": {
        "post": _op("App login: a bearer token", body=AppLogin, errors=(400, 401, 422, 429))
    },
    "/api/app/logout": {"post": _op("Revoke this app token", security="app", errors=(401,))},
    "/api/app/me": {"get": _op("The token's user", security="app", errors=(401,))},
    "/api/app/oauth/{provider}": {
        "post": _op("Third-party login: trade a provider's code for a bearer token; "
                    "409 identity_not_linked carries a link token",
                    body=AppOAuthCode, params=(PROVIDER,),
                    errors=(400, 404, 409, 422, 429, 502, 503))
    },
    "/api/app/oauth/link": {
        "post": _op("Link a provider account to an account by password; a bearer token",
                    body=AppOAuthLink, errors=(400, 401, 409, 410, 422, 429))
    },
    "/api/app/qr/{qr_id}/scan": {
        "post": _op("Scan: claim a session, get the confirm screen's details",
                    security="app", params=(QR_ID,), errors=(401, 404, 409, 410, 429))
    },
    "/api/app/qr/{qr_id}/confirm": {
        "post": _op("Confirm the login on the PC", security="app", params=(QR_ID,),
                    errors=(401, 403, 404, 409, 410, 429))
    },
    "/api/app/qr/{qr_id}/cancel": {
        "post": _op("Decline the login on the PC", security="app", params=(QR_ID,),
                    errors=(401, 403, 404, 409, 410, 429))
    },
    "/api/captcha": {"post": _op("A new picture code (captcha)", ok=201)},
    "/api/captcha/{captcha_id}/image": {
        "get": _op("The picture code as PNG", errors=(404,), ok_type="image/png",
                   params=({"name": "captcha_id", "in": "path", "required": True,
                            "schema": {"type": "string"}},))
    },
    "/api/codes": {
        "post": _op("Solve the captcha and get a one-time code by SMS or email",
                    body=CodeRequest, errors=(400, 401, 409, 422, 429, 503))
    },
    "/api/auth/username-available": {
        "get": _op("Whether a username is free",
                   params=({"name": "username", "in": "query", "schema": {"type": "string"}},))
    },
    "/api/auth/register": {
        "post": _op("Register with phone + code; logs this browser in", body=Register,
                    errors=(400, 409, 410, 422, 429))
    },
    "/api/auth/code-login": {
        "post": _op("Log this browser in with a one-time code", body=CodeLogin,
                    errors=(400, 410, 422, 429))
    },
    "/api/auth/reset": {
        "post": _op("Forgotten password: a reset code and a new password", body=Reset,
                    errors=(400, 410, 422, 429))
    },
    "/api/app/register": {
        "post": _op("Register with phone + code; an app token", body=Register,
                    errors=(400, 409, 410, 422, 429))
    },
    "/api/app/code-login": {
        "post": _op("An app token for a one-time code", body=CodeLogin,
                    errors=(400, 410, 422, 429))
    },
    "/api/me": {
        "get": _op("The account and the asking session", security="app", errors=(401,)),
        "patch": _op("Change the display name", body=Profile, security="app",
                     errors=(400, 401, 422)),
    },
    "/api/me/password": {
        "post": _op("Change the password; other sessions end", body=ChangePassword,
                    security="app", errors=(400, 401, 422))
    },
    "/api/me/phone": {
        "post": _op("Move the account to a new phone", body=ChangePhone, security="app",
                    errors=(400, 401, 409, 410, 422))
    },
    "/api/me/sessions": {
        "get": _op("Browser sessions and app devices", security="app", errors=(401,))
    },
    "/api/me/sessions/{session_id}": {
        "delete": _op("End one session or app token", security="app", errors=(401, 404),
                      params=({"name": "session_id", "in": "path", "required": True,
                               "schema": {"type": "string"}},))
    },
    "/api/notifications": {
        "get": _op("Notifications, newest first (or those after ?after=ID), and the "
                   "unread count", security="app", errors=(401,))
    },
    "/api/notifications/read-all": {
        "post": _op("Mark every notification read", security="app", errors=(401,))
    },
    "/api/notifications/{notification_id}/read": {
        "post": _op("Mark one notification read", security="app", errors=(401, 404),
                    params=({"name": "notification_id", "in": "path", "required": True,
                             "schema": {"type": "integer"}},))
    },
    "/api/certification": {
        "get": _op("Certification status: 已认证 with the enterprise, or 未认证",
                   security="app", errors=(401,))
    },
    "/api/app/certification/start": {
        "post": _op("The 一证通 login URL for the app's web view (certification)",
                    security="app", errors=(401, 404, 503))
    },
    "/api/unbind-requests": {
        "post": _op("File an unbind request (解绑申请)", body=UnbindRequest, ok=201,
                    security="app", errors=(400, 401, 409, 422)),
        "get": _op("My unbind requests and their outcomes", security="app", errors=(401,)),
    },
    "/api/staff/unbind-requests": {
        "get": _op("Staff: the review queue (?status=pending|approved|rejected|all)",
                   security="app", errors=(401, 403))
    },
    "/api/staff/unbind-requests/{request_id}/approve": {
        "post": _op("Staff: approve; the old binding ends (held back by open orders)",
                    security="app", params=(REQUEST_ID,), errors=(401, 403, 404, 409))
    },
    "/api/staff/unbind-requests/{request_id}/reject": {
        "post": _op("Staff: reject with a reason", body=Rejection, security="app",
                    params=(REQUEST_ID,), errors=(400, 401, 403, 404, 409, 422))
    },
    "/api/me/logout-all": {
        "post": _op("End every session and app token", security="app", errors=(401,))
    },
}

MODELS: tuple[type[BaseModel], ...] = (
    CreateSession, Redeem, AppLogin, CodeRequest, Register, CodeLogin, Reset, Profile,
    ChangePassword, ChangePhone, AppOAuthCode, AppOAuthLink,
    UnbindRequest, Rejection,
)


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {},
                    },
                }
            },
        }
    }
    for model in MODELS:
        schemas[model.__name__] = model.model_json_schema()
    return {
        "openapi": "3.1.0",
        "info": {"title": "qrlogin", "version": __version__},
        "paths": PATHS,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "watch": {"type": "http", "scheme": "bearer",
                          "description": "the watch token from POST /api/qr/sessions"},
                "app": {"type": "http", "scheme": "bearer",
                        "description": "the token from POST /api/app/login; pages send "
                        "the session cookie and X-CSRF-Token instead"},
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    """GET /api/openapi.json."""
    return web.json_response(document())


def setup(app: web.Application) -> None:
    """Serve the document."""
    app.router.add_get("/api/openapi.json", openapi_json, name="openapi")
