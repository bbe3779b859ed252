"""The gthread worker of `overnight serve`: gunicorn's own, except how a connection closes.

gunicorn (27) closes a connection after its last answer from the worker's main loop, with a
lingering close that waits up to 2 s for the client to close its side. Every other
connection of that worker waits meanwhile: a client that sends one request and holds its
socket open (with `Connection: close`, or any request once keep-alive is off, our default)
stalls the worker for 2 s, measured (a request behind three such clients took 4 s instead of
5 ms). Here the request's own thread, once gunicorn says the connection closes, shuts its
reading side: the main loop's close then reads only what is already queued (at most gunicorn's
64 KB) and does not wait. The body of a request we answered unread was already read by then
(`edges.drain_unread_body`), so the client still gets its answer rather than a reset.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class ServingWorker(ThreadWorker):
    """gunicorn's gthread worker whose closing connections never hold up its main loop."""

    def handle(self, conn: Any) -> Any:
        result = super().handle(conn)
        if result is False:             # not kept alive, not deferred: gunicorn closes it next
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RD)
        return result
