"""JSON text on the hot paths: QR documents, frames, sessions and API replies.

orjson reads and writes JSON several times faster than the standard library,
and a login flow encodes or decodes about thirty small documents. It writes
UTF-8 as is (no \\u escapes) and refuses NaN and Infinity on input, both of which
suit a JSON API.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from multidict import istr

JSONDecodeError = orjson.JSONDecodeError  # a ValueError, as json's is
loads = orjson.loads


def dumps(value: Any) -> str:
    """Compact JSON text."""
    return orjson.dumps(value).decode()


def response(
    data: Any, *, status: int = 200, headers: dict[istr | str, str] | None = None
) -> web.Response:
    """A JSON reply, as web.json_response gives but encoded by orjson."""
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )
