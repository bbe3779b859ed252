"""What the API checks before a request reaches a view: body size, JSON shape, admin token.

- The body is read by us, at most `limit + 1` bytes whatever the transfer encoding: a declared
  Content-Length over the limit is refused before reading, a chunked body as soon as it passes
  the limit (werkzeug's own limit truncates a chunked body silently, which became a 400).
- What is left of a body we answered without reading (413, 415, 401...) is read and dropped
  after the answer is sent (`drain_unread_body`), so a client still sending sees the answer
  rather than a connection reset.
- A client has `OVERNIGHT_CLIENT_SECONDS` (default 30) to send a request and take its answer
  (enforced by `models.serving.worker`): a body that stops arriving is a 408.
- JSON nesting is bounded (`OVERNIGHT_MAX_JSON_DEPTH`, default 32): the standard parser's own
  recursion guard turns a pathological body into a RecursionError, which is caught, and
  anything deeper than the bound is refused before validation walks it.
- Admin calls are authenticated before anything else looks at the request, with the
  `Authorization: Bearer <token>` scheme and a constant-time comparison.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from werkzeug.wsgi import ClosingIterator

from warehouse.errors import OvernightError

log = logging.getLogger(__name__)

UNKNOWN_LABEL = "_unknown"
# Every byte to b" " except the digits, which become b"0": a run of 19 digits is then a plain
# substring search (a translate and a find in C, ten times faster than a regex over the body).
_DIGITS_AS_ZEROS = bytes(48 if 48 <= code <= 57 else 32 for code in range(256))
_LONG_RUN = b"0" * 19


class EdgeSettings(BaseSettings):
    """Limits of the HTTP edge (environment variables prefixed `OVERNIGHT_`)."""

    model_config = SettingsConfigDict(env_prefix="OVERNIGHT_", extra="ignore")

    explain_max_records: int = Field(
        default=50, ge=1, le=100_000,
        description="Most records one `?explain=true` request may ask to explain.")
    max_json_depth: int = Field(default=32, ge=2, le=512,
                                description="Deepest JSON nesting a body may have.")
    client_seconds: float = Field(
        default=30.0, gt=0, le=3600,
        description="Seconds a client has to send one request (headers and body) and take "
                    "its answer; a slower client is cut off (a body: 408).")


class EdgeSettingsError(OvernightError):
    """An `OVERNIGHT_` edge setting is out of its range (said before serving starts)."""


def edge_settings() -> EdgeSettings:
    """The edge settings from the environment; a wrong value is one clear error naming the
    variable, raised by `overnight serve` before any worker starts (not a worker that fails
    to boot, again and again)."""
    try:
        return EdgeSettings()
    except ValidationError as exc:
        problems = "; ".join(f"OVERNIGHT_{str(e['loc'][0]).upper()}: {e['msg']}"
                             for e in exc.errors())
        raise EdgeSettingsError(problems) from None


class ClientTooSlow(ConnectionResetError):
    """The client did not send its request, or take its answer, within `client_seconds`
    (raised by the serving worker's sockets; a reset, so gunicorn closes quietly)."""


class BodyTimedOut(Exception):
    """The body stopped arriving before its end (answered 408)."""


class BodyTooLarge(Exception):
    """The body is over the configured limit (answered 413)."""


class BadBody(Exception):
    """The body cannot be a request: not JSON, or nested too deeply (answered 400)."""


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, never more than `limit` bytes read into memory (plus one to tell).

    A declared Content-Length is honoured exactly (reading further could block on a kept-alive
    connection); without one, the body is read only when the server terminates the stream
    (chunked bodies under gunicorn), up to `limit + 1` bytes.
    """
    stream = environ.get("wsgi.input")
    declared = environ.get("CONTENT_LENGTH") or ""
    if stream is None:
        return b""
    if declared.strip():
        try:
            length = int(declared)
        except ValueError as exc:
            raise BadBody(f"Content-Length {declared[:40]!r} is not a number") from exc
        if length > limit:
            raise BodyTooLarge
        return _read(stream, max(length, 0))
    if not environ.get("wsgi.input_terminated"):
        return b""
    data = _read(stream, limit + 1)
    if len(data) > limit:
        raise BodyTooLarge
    return data


# How long, and how many bodies' worth of bytes, the rest of an unread body is read for after
# the answer: the time is gunicorn's own linger on close; the bytes bound what a client that
# sends far past the limit can make a thread read.
LINGER_SECONDS = 2.0
LINGER_BODIES = 8


def drain_unread_body(environ: dict[str, Any], limit: int) -> None:
    """Read and drop what is left of the request body, within `LINGER_SECONDS` and
    `LINGER_BODIES * limit` bytes (RFC 9112 section 9.6, a lingering close).

    The server closes the connection after each answer (see `server.gunicorn_options`), and a
    socket closed with unread bytes makes the kernel answer the client's next bytes with a
    reset: a client still sending a body we refused would see the reset, not the 413 it was
    sent (gunicorn's own linger reads 64 KB at most). Runs after the answer is written (the
    close of the response, `LingeringBody`), only under gunicorn, whose body reader ends at
    the body's end whatever the encoding and whose socket bounds each read by the time left.
    A body already read costs one read that returns nothing.
    """
    stream, sock = environ.get("wsgi.input"), environ.get("gunicorn.socket")
    if stream is None or sock is None:
        return
    deadline, budget = time.monotonic() + LINGER_SECONDS, LINGER_BODIES * limit
    previous = sock.gettimeout()
    try:
        while budget > 0 and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            part = stream.read(min(budget, 64 * 1024))
            if not part:
                return
            budget -= len(part)
    except Exception as exc:    # a timeout, a reset, a malformed chunk: the connection
        log.debug("unread body left after %s", exc)     # closes either way
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(previous)


class LingeringBody:
    """WSGI middleware: `drain_unread_body` once the answer is written (the WSGI server closes
    the response iterable after sending it)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: int) -> None:
        self.app, self.limit = app, limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        return ClosingIterator(self.app(environ, start_response),
                               lambda: drain_unread_body(environ, self.limit))


def _read(stream: Any, size: int) -> bytes:
    parts, left = [], size
    while left > 0:
        try:
            part = stream.read(left)
        except ClientTooSlow as exc:
            raise BodyTimedOut(str(exc)) from None
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def parse_json(data: bytes, max_depth: int) -> Any:
    """The parsed body; BadBody when it is not JSON or nested deeper than `max_depth`.

    orjson reads the body first (several times faster), unless it holds a run of 19 digits
    (an integer orjson would turn into a float); what it refuses is read by the standard
    parser, which decides: it reads NaN, Infinity, integers beyond 64 bits, UTF-16
    and lone surrogates (so validation can name the field that holds one) and words the
    error of a body that is not JSON. Whatever orjson accepts, it reads as the standard
    parser would, so the two together answer exactly as the standard parser alone."""
    if has_long_digit_run(data):        # orjson reads integers beyond 64 bits as floats
        parsed = _standard_parse(data, max_depth)
    else:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            parsed = _standard_parse(data, max_depth)
    if _opening_brackets(data) > max_depth and not _flat_records(parsed) \
            and depth_exceeds(parsed, max_depth):
        raise BadBody(f"JSON nested deeper than {max_depth} levels")
    return parsed


def has_long_digit_run(data: bytes) -> bool:
    """Whether the body holds 19 or more digits in a row (an integer orjson may not keep)."""
    return _LONG_RUN in data.translate(_DIGITS_AS_ZEROS)


_CONTAINERS = frozenset({dict, list})


def _flat_records(value: Any) -> bool:
    """A record or a list of records whose values hold no container: nested two deep at most
    (every depth limit is at least 2), which is what prediction bodies are; checked with one
    C-level pass per record instead of a walk over every value."""
    for item in value if isinstance(value, list) else [value]:
        if type(item) is dict:
            if not _CONTAINERS.isdisjoint(map(type, item.values())):
                return False
        elif type(item) in _CONTAINERS:
            return False
    return True


def _standard_parse(data: bytes, max_depth: int) -> Any:
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise BadBody(f"JSON nested deeper than {max_depth} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBody(str(exc)[:200]) from exc


def _opening_brackets(data: bytes) -> int:
    """An upper bound of the nesting depth (counted in C): most bodies need no walk at all."""
    return data.count(b"[") + data.count(b"{")


def depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether containers nest deeper than `max_depth` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for any other form."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def token_matches(header: str, expected: str) -> bool:
    """A constant-time check of the header's bearer token against the configured one."""
    supplied = bearer_token(header)
    if supplied is None:
        return False
    return hmac.compare_digest(supplied.encode(), expected.encode())


def metric_dataset(dataset: str, served: list[str]) -> str:
    """A metric label value: a served dataset's name, or one shared value for anything else
    (a URL path must never mint label values: each is a series kept forever)."""
    if not dataset:
        return ""
    return dataset if dataset in served else UNKNOWN_LABEL
