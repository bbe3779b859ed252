"""Prediction ids that prove the server minted them, so feedback can be checked without storage.

A prediction id is `<32 hex random>.<24 hex tag of the random part>`. The tag is a MAC keyed
by a secret of the data home (`serving/prediction-ids.key`, 32 random bytes created on first
use with 0600 permissions; every worker and `overnight predict` of the same home share it):
BLAKE2b in its keyed mode, a MAC by design and three times faster than HMAC-SHA256, which
mattered once a 1M-row file needed a million ids. Ids minted before carry an HMAC-SHA256 tag
and are still recognised.
`/v1/feedback` verifies an id's tag in microseconds and without the warehouse (which serving
never opens), so labels for ids this platform never answered are refused per id and never
reach the accuracy figures that trigger retraining. The key guards against HTTP clients; whoever
can write the data home can already land files directly, so it needs no stronger home.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from functools import lru_cache
from pathlib import Path

from warehouse import get_settings

KEY_FILE = "prediction-ids.key"
TAG_HEX = 24


@lru_cache(maxsize=8)
def _key_at(path: Path) -> bytes:
    """The key at `path`, created atomically (O_EXCL) when missing: concurrent workers agree."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(handle, "wb") as out:
            out.write(secrets.token_bytes(32))
            out.flush()
            os.fsync(out.fileno())
    for _ in range(100):           # another worker may be writing it this very moment
        key = path.read_bytes()
        if len(key) == 32:
            return key
        time.sleep(0.01)
    raise RuntimeError(f"the prediction id key {path} is not 32 bytes")


_RESOLVED: dict[tuple[str | None, str | None], Path] = {}


def _key() -> bytes:
    """The key of the current data home. Resolving the home builds the settings object
    (about 0.5 ms), too slow once per id of a 1000-record answer: it is resolved once per
    OVERNIGHT_HOME and working directory, the two things the home is derived from (the
    directory only when the home is not an absolute path: `os.getcwd` releases the GIL, and
    taking it back behind a thread that is scoring cost a served request milliseconds)."""
    home = os.environ.get("OVERNIGHT_HOME")
    marker = (home, None if home and os.path.isabs(home) else os.getcwd())
    path = _RESOLVED.get(marker)
    if path is None:
        path = _RESOLVED[marker] = get_settings().serving_dir / KEY_FILE
    return _key_at(path)


def _tag(random_part: str, key: bytes | None = None) -> str:
    """The id's tag: BLAKE2b keyed by the home's secret, 12 bytes."""
    return hashlib.blake2b(random_part.encode(), key=key or _key(),
                           digest_size=TAG_HEX // 2).hexdigest()


def _legacy_tag(random_part: str) -> str:
    """The tag of ids minted before BLAKE2b: HMAC-SHA256, truncated to 12 bytes."""
    return hmac.digest(_key(), random_part.encode(), "sha256").hex()[:TAG_HEX]


def mint_many(count: int) -> list[str]:
    """`count` new prediction ids (the ids of one answer): one read of the key, one call for
    the random parts."""
    keyed = hashlib.blake2b(key=_key(), digest_size=TAG_HEX // 2)
    random = secrets.token_hex(16 * count)
    ids = []
    for i in range(0, 32 * count, 32):     # a copy of the keyed state skips the key block
        part = random[i:i + 32]
        mac = keyed.copy()
        mac.update(part.encode())
        ids.append(f"{part}.{mac.hexdigest()}")
    return ids


def is_ours(prediction_id: str) -> bool:
    """True when this data home's servers (or `overnight predict`) minted the id."""
    random_part, dot, tag = prediction_id.partition(".")
    if not dot or len(random_part) != 32 or len(tag) != TAG_HEX:
        return False
    return hmac.compare_digest(tag, _tag(random_part)) \
        or hmac.compare_digest(tag, _legacy_tag(random_part))
