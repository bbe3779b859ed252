"""The gthread worker of `overnight serve`: gunicorn's own, with three changes at the socket.

- **A closing connection does not hold up the worker.** gunicorn (27) closes a connection
  after its last answer from the worker's main loop, with a lingering close that waits up to
  2 s for the client to close its side. Every other connection of that worker waits
  meanwhile: a client that sends one request and holds its socket open (with `Connection:
  close`, or any request once keep-alive is off, our default) stalled the worker for 2 s,
  measured (a request behind three such clients took 4 s instead of 5 ms). Here the request's
  own thread, once gunicorn says the connection closes, shuts its reading side: the main
  loop's close then reads only what is already queued (at most gunicorn's 64 KB) and does not
  wait. The body of a request we answered unread was already read by then
  (`edges.drain_unread_body`), so the client still gets its answer rather than a reset.
- **A client has `client_seconds` per request** (`OVERNIGHT_CLIENT_SECONDS`, default 30) to
  send its request and take its answer. gunicorn reads a request with no time limit once its
  first byte has arrived: two clients dripping a header a byte a second held both threads of
  a worker, and nobody else was answered for as long as they kept dripping (slowloris). Each
  read and write of a request's thread is bounded by the time left; past it the connection
  is reset (`edges.ClientTooSlow`); a body that stopped arriving is answered 408 first (a
  write may take `WRITE_GRACE_SECONDS` past the deadline, so that answer leaves).
- **No thread waits for a client's first byte.** gunicorn hands each new connection to a
  thread that waits up to 5 s for data: six connections that sent nothing delayed the next
  request of a 2-thread worker by 15 s. Here a connection whose first byte has not come within
  `FIRST_BYTE_SECONDS` waits in the worker's poller instead (gunicorn's own deferral), for up
  to `client_seconds`, and does not count against the worker's connection cap
  (`--worker-connections`, which is about requests being served), up to `MAX_WAITING` of them.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from typing import Any

from gunicorn.workers.gthread import _DEFER, ThreadWorker

from models.serving.edges import ClientTooSlow, edge_settings

_request = threading.local()        # .deadline: when the current thread's request runs out
WRITE_GRACE_SECONDS = 1.0           # each write may wait this long past the deadline (a 408)
FIRST_BYTE_SECONDS = 0.05           # a thread waits this long for a new connection's request
MAX_WAITING = 1000                  # connections waiting for a first byte, beyond the cap
# A read or write may wait this long past the deadline rather than set the socket's timeout
# again: `settimeout` is two system calls that release the GIL, and with one per read and
# write a loaded worker showed 7 % of its samples there (waiting to take the GIL back). Now the
# timeout is set once per request, in place of gunicorn's `setblocking(True)`, and again only
# as the deadline comes near. Requests per second did not move measurably either way.
SLACK_SECONDS = 1.0


def _too_slow() -> ClientTooSlow:
    return ClientTooSlow(errno.ECONNRESET, "the client took longer than its "
                         f"{_request.seconds:g} s for one request")


class DeadlineSocket(socket.socket):
    """An accepted socket whose reads and writes, in a thread serving a request, wait no
    longer than that request's deadline (a shorter timeout already set is kept)."""

    __slots__ = ()

    def _bound(self, grace: float = 0.0) -> None:
        deadline = getattr(_request, "deadline", None)
        if deadline is None:            # the worker's main loop: gunicorn's own timeouts
            return
        left = max(deadline - time.monotonic(), grace)
        if left <= 0:
            raise _too_slow()
        current = self.gettimeout()
        if current is not None and current <= left + SLACK_SECONDS:
            return                      # bounded closely enough: no settimeout (see SLACK)
        self.settimeout(left if current is None else min(current, left))

    def setblocking(self, flag: bool) -> None:
        """gunicorn makes the socket blocking at the start of each request: in a request's
        thread it gets the request's time instead (one call, where there would be two)."""
        deadline = getattr(_request, "deadline", None)
        if flag and deadline is not None:
            self.settimeout(max(deadline - time.monotonic(), 0.001))
        else:
            super().setblocking(flag)

    def recv(self, size: int, flags: int = 0) -> bytes:
        self._bound()
        try:
            return super().recv(size, flags)
        except TimeoutError:
            self._expire()
            raise

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._bound(grace=WRITE_GRACE_SECONDS)      # an answer to a late client still leaves
        try:
            super().sendall(data, flags)
        except TimeoutError:
            self._expire()
            raise

    def _expire(self) -> None:
        """A timeout at the request's deadline is the client's; one set shorter by a caller
        (a drain) stays a plain timeout for that caller."""
        deadline = getattr(_request, "deadline", None)
        if deadline is not None and time.monotonic() >= deadline:
            raise _too_slow()


class ServingWorker(ThreadWorker):
    """gunicorn's gthread worker, with a deadline per request and closing connections that
    never hold up its main loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_seconds = edge_settings().client_seconds

    @property
    def worker_connections(self) -> int:
        """The cap gunicorn's main loop checks before accepting: connections being served,
        plus those waiting in the poller for their first byte (at most `MAX_WAITING`)."""
        return self.serving_cap + min(len(getattr(self, "pending_conns", ())), MAX_WAITING)

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self.serving_cap = value

    def handle(self, conn: Any) -> Any:
        if not conn.initialized and not conn.data_ready \
                and not conn.wait_for_data(FIRST_BYTE_SECONDS):
            return _DEFER               # to the poller: no thread waits for a first byte
        if type(conn.sock) is socket.socket:
            conn.sock.__class__ = DeadlineSocket
        _request.deadline = time.monotonic() + self.client_seconds
        _request.seconds = self.client_seconds
        try:
            result = super().handle(conn)
        finally:
            _request.deadline = None
        if result is False:             # not kept alive, not deferred: gunicorn closes it next
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RD)
        return result

    def finish_request(self, conn: Any, fs: Any) -> None:
        """gunicorn's, except that a connection deferred for its first byte may wait
        `client_seconds` (gunicorn gives it the keep-alive time, 0 when keep-alive is off)."""
        super().finish_request(conn, fs)
        if self.alive and self.pending_conns and self.pending_conns[-1] is conn:
            conn.timeout = time.monotonic() + self.client_seconds

    def _cap_keepalive(self, deadline: float) -> None:
        """On stop, gunicorn lets kept-alive connections linger 2 s at most; connections still
        waiting for a first byte get the same (else a silent client held a stopping worker
        for `client_seconds`). Capping every entry keeps the deque sorted."""
        super()._cap_keepalive(deadline)
        for conn in self.pending_conns:
            conn.timeout = min(conn.timeout, deadline)
