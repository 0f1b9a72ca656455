"""Small request helpers every feature's views share."""

from __future__ import annotations

import json
from typing import TypeVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.errors import BadRequest, Forbidden, Invalid
from server.keys import SETTINGS

M = TypeVar("M", bound=BaseModel)


def client_ip(request: web.Request) -> str:
    """The caller's address, trusting only as many X-Forwarded-For hops as set."""
    hops = request.app[SETTINGS].forwarded_hops
    if hops:
        forwarded = [
            p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",")
        ]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return (request.remote or "")[:64]


def user_agent(request: web.Request) -> str:
    """The User-Agent header, bounded."""
    return request.headers.get("User-Agent", "")[:512]


def bearer(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def parse_body(request: web.Request, model: type[M]) -> M:
    """A JSON body validated by model: 400 when not JSON, 422 naming bad fields."""
    try:
        raw = await request.read()
        data = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest("The body must be JSON.", code="bad_json") from err
    return validate(model, data)


def validate(model: type[M], data: object) -> M:
    """Validate data with model; field errors become Invalid with details."""
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.", code="bad_json")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        details = {
            ".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in err.errors()
        }
        raise Invalid(details=details) from err


def is_allowed_origin(request: web.Request) -> bool:
    """Whether the Origin header, if any, is one of ours."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin.rstrip("/") in request.app[SETTINGS].origins


def check_origin(request: web.Request, *, required: bool) -> None:
    """Refuse a foreign Origin; with required, refuse a missing one as well."""
    if "Origin" not in request.headers and not required:
        return
    if "Origin" not in request.headers or not is_allowed_origin(request):
        raise Forbidden("This request came from another site.", code="bad_origin")


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body of a reply from another server, refusing one larger than limit."""
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > limit:
            raise aiohttp.ClientPayloadError("reply too large")
        chunks.append(chunk)
    return b"".join(chunks)
