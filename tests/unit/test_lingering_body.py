"""`edges.drain_unread_body` reads what is left of a body after the answer, within its time
and byte bounds, on a real socket pair (the end-to-end case, a client still sending a refused
body under gunicorn, is in tests/system/test_serving_edges.py)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from models.serving import edges


class Counting:
    """A raw socket stream that counts what it hands out."""

    def __init__(self, sock: socket.socket) -> None:
        self.stream, self.read_bytes = sock.makefile("rb", buffering=0), 0

    def read(self, size: int) -> bytes:
        part = self.stream.read(size)
        self.read_bytes += len(part)
        return part


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.settimeout(None)
    yield server, client
    server.close()
    client.close()


def _environ(server: socket.socket) -> dict[str, Any]:
    return {"wsgi.input": Counting(server), "gunicorn.socket": server}


def test_the_rest_of_a_body_is_read_to_its_end(pair) -> None:
    server, client = pair

    def send_and_end() -> None:
        client.sendall(b"x" * 300_000)
        client.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send_and_end)
    sender.start()
    environ = _environ(server)
    edges.drain_unread_body(environ, limit=100_000)
    sender.join(timeout=10)
    assert environ["wsgi.input"].read_bytes == 300_000
    assert server.gettimeout() is None                  # the server's own setting is back


def test_a_client_sending_far_past_the_limit_is_read_for_a_bounded_number_of_bytes(pair
                                                                                  ) -> None:
    server, client = pair
    limit = 10_000
    sender = threading.Thread(target=lambda: _send_quietly(client, b"x" * (30 * limit)))
    sender.start()
    environ = _environ(server)
    edges.drain_unread_body(environ, limit=limit)
    assert environ["wsgi.input"].read_bytes == edges.LINGER_BODIES * limit
    environ["wsgi.input"].stream.close()                # the server closes: the sender stops
    server.close()
    sender.join(timeout=10)
    assert not sender.is_alive()


def test_a_silent_client_is_waited_for_a_bounded_time(pair, monkeypatch) -> None:
    server, client = pair
    monkeypatch.setattr(edges, "LINGER_SECONDS", 0.3)
    client.sendall(b"x" * 100)                          # then nothing, connection open
    environ = _environ(server)
    started = time.monotonic()
    edges.drain_unread_body(environ, limit=100_000)
    assert 0.25 < time.monotonic() - started < 5
    assert environ["wsgi.input"].read_bytes == 100
    assert server.gettimeout() is None


def test_nothing_is_read_outside_gunicorn(pair) -> None:
    """Other servers may block on a read past the body's end: the drain is gunicorn's only."""
    server, client = pair
    client.sendall(b"x" * 100)
    stream = Counting(server)
    edges.drain_unread_body({"wsgi.input": stream}, limit=100_000)
    assert stream.read_bytes == 0


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):                  # the drain stopped reading: closed
        sock.sendall(data)
