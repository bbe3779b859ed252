"""Artifact signatures: what serving, batch scoring and the gate may unpickle.

A sha256 written next to the path it vouches for proves nothing against someone who can write
both (the serving manifest, the warehouse and the artifacts all live in the data home). So at
registration the registry signs a statement that binds the artifact's digest to its dataset,
version and path (relative to the data home's `artifacts/`) and to the model card it is
served with, using HMAC-SHA256 and a key that does not live in the data home:
`OVERNIGHT_SIGNING_KEY` (hex, base64 or any string of at least 32 bytes) or a key file created
on first use under the user's config directory (`$XDG_CONFIG_HOME/overnight/signing.key`,
else `~/.config/overnight/signing.key`, or `OVERNIGHT_SIGNING_KEY_FILE`), mode 0600.

Every loader calls `verified_bytes` before unpickling: the path must resolve under
`artifacts/` (no symlink escape), the bytes read once are hashed, and the signature over the
statement rebuilt from those bytes must verify (constant-time compare). The verified bytes
are what gets unpickled, so the file cannot change between the check and the load.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from warehouse import get_settings
from warehouse.errors import OvernightError

SCHEME = "hmac-sha256"
STATEMENT_VERSION = 1
MIN_KEY_BYTES = 32
KEY_ENV = "OVERNIGHT_SIGNING_KEY"
KEY_FILE_ENV = "OVERNIGHT_SIGNING_KEY_FILE"
SIGN_COMMAND = "overnight registry sign"


class SigningError(OvernightError):
    """Signing or verifying an artifact failed (the message names what and why)."""


class SigningKeyError(SigningError):
    """No usable signing key: missing, too short, too open, or inside the data home."""


class SignatureError(SigningError):
    """An artifact that must not be loaded: unsigned, forged, changed, or outside artifacts/."""


class UnsignedArtifactError(SignatureError):
    """A version registered before signing existed (an existing home: run the sign command)."""


# ---------------------------------------------------------------------------------- keys


def parse_key(text: str, origin: str) -> bytes:
    """Key bytes from hex, base64 or plain text; at least 32 bytes whichever it is."""
    value = text.strip()
    candidates: list[bytes] = []
    with contextlib.suppress(ValueError):
        candidates.append(bytes.fromhex(value))
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.b64decode(value, validate=True))
    candidates.append(value.encode())
    for key in candidates:
        if len(key) >= MIN_KEY_BYTES:
            return key
    raise SigningKeyError(f"the signing key from {origin} is shorter than {MIN_KEY_BYTES} bytes; "
                          "use e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`")


def default_key_file() -> Path:
    """Where the key file lives when no variable names one: the user's config directory."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "overnight" / "signing.key"


def key_file() -> Path:
    chosen = get_settings().signing_key_file
    return Path(chosen).expanduser() if chosen else default_key_file()


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _check_key_file(path: Path) -> None:
    home = get_settings().home
    if _inside(path, home):
        raise SigningKeyError(f"signing key file {path} is inside the data home {home}: whoever "
                              "can write the artifacts could read it; keep the key elsewhere")
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise SigningKeyError(f"signing key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise SigningKeyError(f"signing key file {path} is readable or writable by group or "
                              f"others (mode {stat.S_IMODE(info.st_mode):04o}); "
                              f"run `chmod 600 {path}`")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise SigningKeyError(f"signing key file {path} belongs to another user")


def _create_key_file(path: Path) -> None:
    """A new random key, created 0600 in a 0700 folder (exclusive: a racing creator wins)."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        os.chmod(folder, 0o700)                     # mkdir's mode is masked by the umask
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(handle, "w") as out:
        out.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
        out.flush()
        os.fsync(out.fileno())


def signing_key(*, create: bool = False) -> bytes:
    """The key: `OVERNIGHT_SIGNING_KEY`, else the key file (made on first use with `create`).

    Verifiers never create a key: a fresh key would only make every signature fail, so a
    missing key is reported as such.
    """
    settings = get_settings()
    if settings.signing_key is not None and settings.signing_key.get_secret_value().strip():
        return parse_key(settings.signing_key.get_secret_value(), KEY_ENV)
    path = key_file()
    if _inside(path, settings.home):         # refuse before creating anything there
        raise SigningKeyError(f"signing key file {path} is inside the data home "
                              f"{settings.home}; keep the key elsewhere")
    if not path.exists():
        if not create:
            raise SigningKeyError(f"no signing key: set {KEY_ENV}, or {KEY_FILE_ENV}, to the key "
                                  f"the registry signed with (looked for {path})")
        _create_key_file(path)
    _check_key_file(path)
    return parse_key(path.read_text(), str(path))


def key_id(key: bytes) -> str:
    """A short public name of a key (diagnostics: which key signed what), not the key."""
    return hashlib.sha256(b"overnight-key-id:" + key).hexdigest()[:12]


# ---------------------------------------------------------------------------- statements


def canonical(payload: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, ASCII."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      default=str).encode()


def card_sha256(card: dict[str, Any]) -> str:
    """Digest of a model card as served (its JSON round trip, so stored and served agree)."""
    return hashlib.sha256(canonical(json.loads(json.dumps(card, default=str)))).hexdigest()


def relative_artifact_path(path: Path | str, label: str = "a model") -> str:
    """The artifact's path under the data home's `artifacts/`, symlinks resolved; refuse any
    path that resolves outside it."""
    root = get_settings().artifacts_dir.resolve()
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root):
        raise SignatureError(f"artifact of {label} at {path} resolves to {resolved}, outside "
                             f"the data home's artifacts folder {root}; refusing to load it")
    return resolved.relative_to(root).as_posix()


def statement(*, dataset: str, model_version: str, artifact: str, sha256: str,
              card: dict[str, Any] | None) -> dict[str, Any]:
    """What a signature vouches for."""
    return {"scheme": SCHEME, "statement_version": STATEMENT_VERSION, "dataset": dataset,
            "model_version": model_version, "artifact": artifact, "sha256": sha256,
            "card_sha256": card_sha256(card) if card is not None else None}


def sign(claim: dict[str, Any], key: bytes | None = None) -> str:
    key = signing_key(create=True) if key is None else key
    return f"{SCHEME}:{hmac.new(key, canonical(claim), hashlib.sha256).hexdigest()}"


def signature_matches(claim: dict[str, Any], signature: str, key: bytes | None = None) -> bool:
    key = signing_key() if key is None else key
    expected = sign(claim, key)
    return hmac.compare_digest(expected.encode(), signature.encode())


def sign_artifact(*, dataset: str, model_version: str, path: Path, sha256: str,
                  card: dict[str, Any] | None, key: bytes | None = None) -> str:
    """The signature of one artifact (registration and `overnight registry sign`)."""
    return sign(statement(dataset=dataset, model_version=model_version,
                          artifact=relative_artifact_path(path), sha256=sha256, card=card), key)


# ---------------------------------------------------------------------------- verifying


def _read_once(path: Path, label: str) -> bytes:
    """The file's bytes through one descriptor that does not follow a final symlink."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        handle = os.open(path, flags)
    except FileNotFoundError:
        raise SignatureError(f"artifact of {label} is missing: {path}") from None
    except OSError as error:
        raise SignatureError(f"artifact of {label} at {path} cannot be read: {error}") from None
    with os.fdopen(handle, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise SignatureError(f"artifact of {label} at {path} is not a regular file")
        return source.read()


def verified_bytes(*, dataset: str, model_version: str, path: Path | str,
                   card: dict[str, Any] | None, signature: str | None,
                   expected_sha256: str | None = None, key: bytes | None = None) -> bytes:
    """The artifact's bytes, only when its signature verifies; raise `SignatureError` else.

    Checks, in order and before anything is unpickled: a signature exists; the path resolves
    under `artifacts/`; the bytes' sha256 is the one the caller was told (a clear message for
    an accident); the signature over the statement rebuilt from the bytes read verifies.
    """
    label = model_version
    if not signature:
        raise UnsignedArtifactError(
            f"{label} is not signed (registered before artifact signing, or a forged entry); "
            f"if this home predates signing, run `{SIGN_COMMAND}` once")
    artifact = relative_artifact_path(path, label)
    data = _read_once(Path(path).resolve(), label)
    actual = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and actual != expected_sha256:
        raise SignatureError(f"artifact of {label} at {path} has sha256 {actual[:12]}..., "
                             f"registered {expected_sha256[:12]}...; refusing a changed file")
    claim = statement(dataset=dataset, model_version=model_version, artifact=artifact,
                      sha256=actual, card=card)
    if not signature_matches(claim, signature, key):
        raise SignatureError(
            f"signature of {label} ({artifact}) does not verify with this host's signing key: "
            "a forged or changed artifact, card or entry, or a different key "
            f"({KEY_ENV} / {KEY_FILE_ENV}); refusing to load it")
    return data
