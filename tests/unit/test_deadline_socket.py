"""`worker.DeadlineSocket` on a real socket pair: reads and writes of a request's thread end
at the request's deadline (a reset, `ClientTooSlow`), a shorter timeout a caller set is kept
and stays a plain timeout (the body drain relies on it), and outside a request (gunicorn's
main loop) nothing changes. End to end, under gunicorn: tests/system/test_serving_edges.py."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from models.serving import worker
from models.serving.edges import ClientTooSlow


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    server.__class__ = worker.DeadlineSocket
    yield server, client
    worker._request.deadline = None
    server.close()
    client.close()


def _within(seconds: float) -> None:
    worker._request.deadline = time.monotonic() + seconds
    worker._request.seconds = seconds


def test_a_read_past_the_deadline_is_a_reset(pair) -> None:
    server, _ = pair
    _within(0.3)
    started = time.monotonic()
    with pytest.raises(ClientTooSlow, match=r"0\.3 s"):
        server.recv(10)
    assert 0.25 < time.monotonic() - started < 5
    with pytest.raises(ClientTooSlow):              # and every call after it
        server.recv(10)


def test_data_within_the_deadline_is_read(pair) -> None:
    server, client = pair
    _within(5)
    client.sendall(b"hello")
    assert server.recv(10) == b"hello"


def test_a_shorter_timeout_set_by_a_caller_stays_a_plain_timeout(pair) -> None:
    server, _ = pair
    _within(30)
    server.settimeout(0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        server.recv(10)
    assert not isinstance(raised.value, ClientTooSlow)
    assert time.monotonic() - started < 5


def test_an_answer_may_still_leave_just_after_the_deadline(pair) -> None:
    server, client = pair
    _within(0.01)
    time.sleep(0.05)
    server.sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")   # within the write grace
    assert client.recv(100).startswith(b"HTTP/1.1 408")


def test_outside_a_request_the_socket_is_gunicorns(pair) -> None:
    server, client = pair
    worker._request.deadline = None
    client.sendall(b"x")
    assert server.recv(1) == b"x"
    assert server.gettimeout() is None


def test_made_blocking_in_a_request_it_waits_no_longer_than_the_request(pair) -> None:
    server, _ = pair
    _within(5)
    server.setblocking(True)                        # what gunicorn does for each request
    assert 0 < server.gettimeout() <= 5
    worker._request.deadline = None
    server.setblocking(True)                        # gunicorn's main loop: plain blocking
    assert server.gettimeout() is None
