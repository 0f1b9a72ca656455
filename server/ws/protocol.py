"""The WebSocket protocol: frame types, close codes and error frames.

Client frames are JSON objects with a "type". The first must be
{"type": "auth", "token": ...}; later requests carry an "id" that the reply
repeats. Server frames: "state", "result" and "error".
"""

from __future__ import annotations

import json
from typing import Any

# Close codes. 1000 and 1012 are standard; 4000-4999 are ours.
CLOSE_DONE = 1000  # the session reached a final state; nothing more will come
CLOSE_RESTART = 1012  # the server is restarting; reconnect with jitter and resume
CLOSE_UNAUTHORIZED = 4001  # the first frame was not a valid auth frame
CLOSE_UNKNOWN = 4004  # no such session (never existed, or long gone)
CLOSE_AUTH_TIMEOUT = 4008  # no auth frame within the time allowed
CLOSE_SLOW = 4009  # the client read too slowly and its queue filled

CLOSE_REASONS = {
    CLOSE_DONE: "done",
    CLOSE_RESTART: "restart",
    CLOSE_UNAUTHORIZED: "unauthorized",
    CLOSE_UNKNOWN: "unknown session",
    CLOSE_AUTH_TIMEOUT: "auth timeout",
    CLOSE_SLOW: "slow consumer",
}


class FrameError(Exception):
    """A client frame that cannot be handled; the socket stays open."""

    def __init__(self, code: str, message: str, request_id: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def parse(text: str, *, max_size: int) -> dict[str, Any]:
    """A client frame as a dict with a string "type", or FrameError."""
    if len(text) > max_size:
        raise FrameError("too_large", f"Frames may be at most {max_size} bytes.")
    try:
        frame = json.loads(text)
    except ValueError as err:
        raise FrameError("bad_frame", "Frames must be JSON.") from err
    if not isinstance(frame, dict):
        raise FrameError("bad_frame", "Frames must be JSON objects.")
    request_id = frame.get("id")
    if not isinstance(request_id, int | str | None) or isinstance(request_id, bool):
        raise FrameError("bad_frame", "The id must be a number or a string.")
    if not isinstance(frame.get("type"), str):
        raise FrameError("bad_frame", "Every frame needs a type.", request_id)
    return frame


def error(code: str, message: str, request_id: object = None) -> dict[str, Any]:
    """An error frame; it repeats the request id when there was one."""
    return {"type": "error", "id": request_id, "code": code, "message": message}


def result(request_id: object, value: Any) -> dict[str, Any]:
    """A reply to a client request."""
    return {"type": "result", "id": request_id, "result": value}
