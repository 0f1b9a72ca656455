"""Opening a socket: the Origin check, the socket's settings and its registration.

Both sockets (/ws/qr/{id} and /ws) open the same way. The socket class also works
around an aiohttp 3.14 behaviour that kept every closed socket alive for about
forty seconds, which at a few hundred logins a second is hundreds of megabytes.
"""

from __future__ import annotations

import logging

from aiohttp import web

from server.errors import Forbidden
from server.http import client_ip, is_allowed_origin
from server.keys import SETTINGS, SOCKETS
from server.ws.connection import Connection

log = logging.getLogger(__name__)


class Socket(web.WebSocketResponse):
    """A WebSocketResponse whose heartbeat stays off once it is closed.

    aiohttp cancels the heartbeat in close(), but the peer's answering close frame
    arrives afterwards and its data_received re-arms the timer; the timer then
    holds the socket, its request and its buffers for a heartbeat interval and a
    pong timeout after the connection is gone.
    """

    # TODO(aiohttp>3.14.5): drop when _reset_heartbeat checks for a closed socket.
    def _reset_heartbeat(self) -> None:
        if not self.closed:
            super()._reset_heartbeat()


async def open_socket(request: web.Request) -> tuple[Socket, Connection]:
    """Check Origin (CSWSH), upgrade, and give the socket its bounded send queue."""
    if not is_allowed_origin(request):
        log.warning(
            "foreign Origin %r from %s",
            request.headers.get("Origin"),
            client_ip(request),
        )
        raise Forbidden("This socket was opened from another site.", code="bad_origin")
    settings = request.app[SETTINGS]
    ws = Socket(
        heartbeat=settings.ws_heartbeat,
        compress=False,
        max_msg_size=settings.ws_max_frame * 16,
    )
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    conn = Connection(ws, limit=settings.ws_send_queue, peer=client_ip(request))
    return ws, conn
