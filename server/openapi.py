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
    ChangePassword,
    ChangePhone,
    CodeLogin,
    CodeRequest,
    Profile,
    Register,
    Reset,
)
from server.auth.views import AppLogin
from server.certification.views import Rejection, UnbindRequest
from server.declarations.staff import ReviewComment
from server.declarations.views import DeclarationFields, NewDeclaration
from server.oauth.api import AppOAuthCode, AppOAuthLink
from server.qr.views import CreateSession, Redeem
from server.zone.staff import GuideForm, ProgramForm, ProgramStatus, ShortLinkForm

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
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{body.__name__}"}
                }
            },
        }
    if security:
        op["security"] = [{security: []}]
    if params:
        op["parameters"] = list(params)
    return op


REQUEST_ID = {
    "name": "request_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}
QR_ID = {"name": "qr_id", "in": "path", "required": True, "schema": {"type": "string"}}
WAIT = {"name": "wait", "in": "query", "schema": {"type": "number", "minimum": 0}}
SINCE = {"name": "since", "in": "query", "schema": {"type": "integer"}}
PROVIDER = {
    "name": "provider",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}

PROGRAM_ID = {
    "name": "program_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}
DECLARATION_ID = {
    "name": "declaration_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}
ATTACHMENT_ID = {
    "name": "attachment_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer"},
}
PROGRAM_FILTERS = (
    {"name": "q", "in": "query", "schema": {"type": "string"}},
    {"name": "department", "in": "query", "schema": {"type": "string"}},
    {
        "name": "state",
        "in": "query",
        "schema": {"type": "string", "enum": ["upcoming", "open", "closed"]},
    },
)
ONE_DECLARATION = "/api/declarations/{declaration_id}"

PATHS: dict[str, dict[str, Any]] = {
    "/healthz": {"get": _op("Liveness")},
    "/readyz": {"get": _op("Readiness: database and broker", errors=(503,))},
    "/api/openapi.json": {"get": _op("This document")},
    "/api/qr/sessions": {
        "post": _op(
            "Create a QR session for a waiting page",
            body=CreateSession,
            ok=201,
            errors=(401, 409, 422, 429),
        )
    },
    "/api/qr/sessions/{qr_id}": {
        "get": _op(
            "Read or long-poll a session's state (watch token)",
            security="watch",
            params=(QR_ID, WAIT, SINCE),
            errors=(400, 401, 404, 429),
        )
    },
    "/api/qr/sessions/{qr_id}/image": {
        "get": _op(
            "The QR code as SVG",
            params=(QR_ID,),
            errors=(404,),
            ok_type="image/svg+xml",
        )
    },
    "/api/qr/sessions/{qr_id}/redeem": {
        "post": _op(
            "Trade the login ticket for a session cookie",
            body=Redeem,
            security="watch",
            params=(QR_ID,),
            errors=(400, 401, 404, 409, 410, 422, 429),
        )
    },
    "/api/app/login": {
        "post": _op(
            "App login: a bearer token", body=AppLogin, errors=(400, 401, 422, 429)
        )
    },
    "/api/app/logout": {
        "post": _op("Revoke this app token", security="app", errors=(401,))
    },
    "/api/app/me": {"get": _op("The token's user", security="app", errors=(401,))},
    "/api/app/oauth/{provider}": {
        "post": _op(
            "Third-party login: trade a provider's code for a bearer token; "
            "409 identity_not_linked carries a link token",
            body=AppOAuthCode,
            params=(PROVIDER,),
            errors=(400, 404, 409, 422, 429, 502, 503),
        )
    },
    "/api/app/oauth/link": {
        "post": _op(
            "Link a provider account to an account by password; a bearer token",
            body=AppOAuthLink,
            errors=(400, 401, 409, 410, 422, 429),
        )
    },
    "/api/app/qr/{qr_id}/scan": {
        "post": _op(
            "Scan: claim a session, get the confirm screen's details",
            security="app",
            params=(QR_ID,),
            errors=(401, 404, 409, 410, 429),
        )
    },
    "/api/app/qr/{qr_id}/confirm": {
        "post": _op(
            "Confirm the login on the PC",
            security="app",
            params=(QR_ID,),
            errors=(401, 403, 404, 409, 410, 429),
        )
    },
    "/api/app/qr/{qr_id}/cancel": {
        "post": _op(
            "Decline the login on the PC",
            security="app",
            params=(QR_ID,),
            errors=(401, 403, 404, 409, 410, 429),
        )
    },
    "/api/captcha": {"post": _op("A new picture code (captcha)", ok=201)},
    "/api/captcha/{captcha_id}/image": {
        "get": _op(
            "The picture code as PNG",
            errors=(404,),
            ok_type="image/png",
            params=(
                {
                    "name": "captcha_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ),
        )
    },
    "/api/codes": {
        "post": _op(
            "Solve the captcha and get a one-time code by SMS or email",
            body=CodeRequest,
            errors=(400, 401, 409, 422, 429, 503),
        )
    },
    "/api/auth/username-available": {
        "get": _op(
            "Whether a username is free",
            params=({"name": "username", "in": "query", "schema": {"type": "string"}},),
        )
    },
    "/api/auth/register": {
        "post": _op(
            "Register with phone + code; logs this browser in",
            body=Register,
            errors=(400, 409, 410, 422, 429),
        )
    },
    "/api/auth/code-login": {
        "post": _op(
            "Log this browser in with a one-time code",
            body=CodeLogin,
            errors=(400, 410, 422, 429),
        )
    },
    "/api/auth/reset": {
        "post": _op(
            "Forgotten password: a reset code and a new password",
            body=Reset,
            errors=(400, 410, 422, 429),
        )
    },
    "/api/app/register": {
        "post": _op(
            "Register with phone + code; an app token",
            body=Register,
            errors=(400, 409, 410, 422, 429),
        )
    },
    "/api/app/code-login": {
        "post": _op(
            "An app token for a one-time code",
            body=CodeLogin,
            errors=(400, 410, 422, 429),
        )
    },
    "/api/me": {
        "get": _op("The account and the asking session", security="app", errors=(401,)),
        "patch": _op(
            "Change the display name",
            body=Profile,
            security="app",
            errors=(400, 401, 422),
        ),
    },
    "/api/me/password": {
        "post": _op(
            "Change the password; other sessions end",
            body=ChangePassword,
            security="app",
            errors=(400, 401, 422),
        )
    },
    "/api/me/phone": {
        "post": _op(
            "Move the account to a new phone",
            body=ChangePhone,
            security="app",
            errors=(400, 401, 409, 410, 422),
        )
    },
    "/api/me/sessions": {
        "get": _op("Browser sessions and app devices", security="app", errors=(401,))
    },
    "/api/me/sessions/{session_id}": {
        "delete": _op(
            "End one session or app token",
            security="app",
            errors=(401, 404),
            params=(
                {
                    "name": "session_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ),
        )
    },
    "/api/notifications": {
        "get": _op(
            "Notifications, newest first (or those after ?after=ID), and the "
            "unread count",
            security="app",
            errors=(401,),
        )
    },
    "/api/notifications/read-all": {
        "post": _op("Mark every notification read", security="app", errors=(401,))
    },
    "/api/notifications/{notification_id}/read": {
        "post": _op(
            "Mark one notification read",
            security="app",
            errors=(401, 404),
            params=(
                {
                    "name": "notification_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                },
            ),
        )
    },
    "/api/certification": {
        "get": _op(
            "Certification status: 已认证 with the enterprise, or 未认证",
            security="app",
            errors=(401,),
        )
    },
    "/api/app/certification/start": {
        "post": _op(
            "The 一证通 login URL for the app's web view (certification)",
            security="app",
            errors=(401, 404, 503),
        )
    },
    "/api/unbind-requests": {
        "post": _op(
            "File an unbind request (解绑申请)",
            body=UnbindRequest,
            ok=201,
            security="app",
            errors=(400, 401, 409, 422),
        ),
        "get": _op(
            "My unbind requests and their outcomes", security="app", errors=(401,)
        ),
    },
    "/api/staff/unbind-requests": {
        "get": _op(
            "Staff: the review queue (?status=pending|approved|rejected|all)",
            security="app",
            errors=(401, 403),
        )
    },
    "/api/staff/unbind-requests/{request_id}/approve": {
        "post": _op(
            "Staff: approve; the old binding ends (held back by open orders)",
            security="app",
            params=(REQUEST_ID,),
            errors=(401, 403, 404, 409),
        )
    },
    "/api/staff/unbind-requests/{request_id}/reject": {
        "post": _op(
            "Staff: reject with a reason",
            body=Rejection,
            security="app",
            params=(REQUEST_ID,),
            errors=(400, 401, 403, 404, 409, 422),
        )
    },
    "/api/me/logout-all": {
        "post": _op("End every session and app token", security="app", errors=(401,))
    },
}

PATHS.update(
    {
        "/api/app/home": {
            "get": _op(
                "App home entries: 一体化申报平台, open or sent to certification first",
                security="app",
                errors=(401,),
            )
        },
        "/api/programs": {
            "get": _op(
                "Published programs (申报项目), searched and filtered; certified only",
                security="app",
                params=PROGRAM_FILTERS,
                errors=(401, 403),
            )
        },
        "/api/programs/{program_id}": {
            "get": _op(
                "One program with its sanitised notice",
                security="app",
                params=(PROGRAM_ID,),
                errors=(401, 403, 404),
            )
        },
        "/api/staff/programs": {
            "get": _op("Staff: every program", security="app", errors=(401, 403)),
            "post": _op(
                "Staff: add a program (notice HTML is sanitised)",
                body=ProgramForm,
                ok=201,
                security="app",
                errors=(400, 401, 403, 422),
            ),
        },
        "/api/staff/programs/{program_id}": {
            "put": _op(
                "Staff: replace a program",
                body=ProgramForm,
                security="app",
                params=(PROGRAM_ID,),
                errors=(400, 401, 403, 404, 422),
            )
        },
        "/api/staff/programs/{program_id}/status": {
            "post": _op(
                "Staff: publish, archive or unpublish",
                body=ProgramStatus,
                security="app",
                params=(PROGRAM_ID,),
                errors=(400, 401, 403, 404, 422),
            )
        },
        "/api/staff/guides/{slug}": {
            "put": _op(
                "Staff: write a guide page (e.g. 高精尖资金申报引导)",
                body=GuideForm,
                security="app",
                errors=(400, 401, 403, 409, 422),
                params=(
                    {
                        "name": "slug",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ),
            )
        },
        "/api/staff/short-links": {
            "get": _op(
                "Staff: short links and their hits", security="app", errors=(401, 403)
            ),
            "post": _op(
                "Staff: create or retarget a short link",
                body=ShortLinkForm,
                ok=201,
                security="app",
                errors=(400, 401, 403, 409, 422),
            ),
        },
        "/api/declarations": {
            "get": _op("My enterprise's declarations", security="app", errors=(401,)),
            "post": _op(
                "Start a draft for an open program",
                body=NewDeclaration,
                ok=201,
                security="app",
                errors=(400, 401, 403, 404, 409, 410, 422),
            ),
        },
        ONE_DECLARATION: {
            "get": _op(
                "A declaration with its status history and attachments",
                security="app",
                params=(DECLARATION_ID,),
                errors=(401, 404),
            ),
            "patch": _op(
                "Save as draft: only the fields sent change",
                body=DeclarationFields,
                security="app",
                params=(DECLARATION_ID,),
                errors=(400, 401, 404, 409, 422),
            ),
        },
        ONE_DECLARATION + "/submit": {
            "post": _op(
                "Submit once, inside the window; 422 names every wrong field",
                security="app",
                params=(DECLARATION_ID,),
                errors=(401, 404, 409, 410, 422),
            )
        },
        ONE_DECLARATION + "/withdraw": {
            "post": _op(
                "Withdraw a submitted declaration before review starts",
                security="app",
                params=(DECLARATION_ID,),
                errors=(401, 404, 409),
            )
        },
        ONE_DECLARATION + "/attachments": {
            "post": _op(
                "Upload an attachment: the raw file is the body (PDF, PNG, JPG by "
                "content), ?name= gives its file name",
                ok=201,
                security="app",
                params=(
                    DECLARATION_ID,
                    {"name": "name", "in": "query", "schema": {"type": "string"}},
                ),
                errors=(401, 404, 409, 413, 415, 422),
            )
        },
        ONE_DECLARATION + "/attachments/{attachment_id}": {
            "get": _op(
                "Download an attachment (checked against its sha256)",
                security="app",
                params=(DECLARATION_ID, ATTACHMENT_ID),
                ok_type="application/octet-stream",
                errors=(401, 404, 503),
            ),
            "delete": _op(
                "Delete an attachment of an editable declaration",
                security="app",
                params=(DECLARATION_ID, ATTACHMENT_ID),
                errors=(401, 404, 409),
            ),
        },
        "/api/staff/declarations": {
            "get": _op(
                "Staff: declarations by ?status=", security="app", errors=(401, 403)
            )
        },
        "/api/staff/declarations/{declaration_id}/{action}": {
            "post": _op(
                "Staff: accept (start review), return or reject with a comment, "
                "approve",
                body=ReviewComment,
                security="app",
                params=(
                    DECLARATION_ID,
                    {
                        "name": "action",
                        "in": "path",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "enum": ["accept", "return", "approve", "reject"],
                        },
                    },
                ),
                errors=(400, 401, 403, 404, 409, 422),
            )
        },
    }
)

MODELS: tuple[type[BaseModel], ...] = (
    CreateSession,
    Redeem,
    AppLogin,
    CodeRequest,
    Register,
    CodeLogin,
    Reset,
    Profile,
    ChangePassword,
    ChangePhone,
    AppOAuthCode,
    AppOAuthLink,
    UnbindRequest,
    Rejection,
    ProgramForm,
    ProgramStatus,
    GuideForm,
    ShortLinkForm,
    DeclarationFields,
    NewDeclaration,
    ReviewComment,
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
                "watch": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the watch token from POST /api/qr/sessions",
                },
                "app": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the token from POST /api/app/login; pages send "
                    "the session cookie and X-CSRF-Token instead",
                },
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    """GET /api/openapi.json."""
    return web.json_response(document())


def setup(app: web.Application) -> None:
    """Serve the document."""
    app.router.add_get("/api/openapi.json", openapi_json, name="openapi")
