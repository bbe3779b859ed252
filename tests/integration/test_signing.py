"""The signing key and statements (models/registry/signing.py): where the key comes from, which key
files are refused, and what a signature binds."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from models.registry import signing


@pytest.fixture
def no_key_env(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No key variable; the config folder is a fresh tmp one. Returns that folder."""
    config = tmp_path / "config"
    monkeypatch.delenv("OVERNIGHT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("OVERNIGHT_SIGNING_KEY_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config


def test_key_from_the_environment_in_hex_base64_or_text(home: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    raw = bytes(range(32))
    for text in (raw.hex(), base64.b64encode(raw).decode()):
        monkeypatch.setenv("OVERNIGHT_SIGNING_KEY", text)
        assert signing.signing_key() == raw
    monkeypatch.setenv("OVERNIGHT_SIGNING_KEY", "a passphrase of thirty-two bytes or more")
    assert signing.signing_key() == b"a passphrase of thirty-two bytes or more"
    monkeypatch.setenv("OVERNIGHT_SIGNING_KEY", "short")
    with pytest.raises(signing.SigningKeyError, match="shorter than 32 bytes"):
        signing.signing_key()


def test_key_file_made_on_first_signing_private_and_reused(no_key_env: Path) -> None:
    path = no_key_env / "overnight" / "signing.key"
    with pytest.raises(signing.SigningKeyError, match="no signing key"):
        signing.signing_key()                      # a verifier never invents a key
    assert not path.exists()
    key = signing.signing_key(create=True)
    assert len(key) == 32 and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert signing.signing_key() == key == signing.signing_key(create=True)


def test_open_or_misplaced_key_files_are_refused(no_key_env: Path, home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = no_key_env / "overnight" / "signing.key"
    signing.signing_key(create=True)
    os.chmod(path, 0o644)
    with pytest.raises(signing.SigningKeyError, match="chmod 600"):
        signing.signing_key()
    inside = home / "signing.key"
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("OVERNIGHT_SIGNING_KEY_FILE", str(inside))
    with pytest.raises(signing.SigningKeyError, match="inside the data home"):
        signing.signing_key(create=True)
    assert not inside.exists()
    elsewhere = no_key_env / "elsewhere.key"
    monkeypatch.setenv("OVERNIGHT_SIGNING_KEY_FILE", str(elsewhere))
    assert len(signing.signing_key(create=True)) == 32 and elsewhere.exists()


def test_card_digest_survives_the_json_round_trip_and_binds_the_card() -> None:
    card = {"b": 1.1, "a": [1, 2, {"z": None}], "when": "2026-12-02", "nan": float("nan")}
    again = json.loads(json.dumps(card))
    assert signing.card_sha256(card) == signing.card_sha256(again)
    assert signing.card_sha256({**card, "b": 1.2}) != signing.card_sha256(card)


def test_unsigned_and_escaping_paths_refused_before_reading(home: Path, tmp_path: Path) -> None:
    artifacts = home / "artifacts" / "customer" / "v1"
    artifacts.mkdir(parents=True)
    outside = tmp_path / "x.joblib"
    outside.write_bytes(b"not read")
    with pytest.raises(signing.UnsignedArtifactError, match="overnight registry sign"):
        signing.verified_bytes(dataset="customer", model_version="customer-v1", path=outside,
                               card={}, signature=None)
    for path in (outside, artifacts / ".." / ".." / ".." / ".." / outside.name):
        with pytest.raises(signing.SignatureError, match="outside the data home"):
            signing.verified_bytes(dataset="customer", model_version="customer-v1", path=path,
                                   card={}, signature="hmac-sha256:00")
    inside = artifacts / "model.joblib"
    inside.write_bytes(b"model bytes")
    good = signing.sign_artifact(dataset="customer", model_version="customer-v1", path=inside,
                                 sha256=hashlib.sha256(b"model bytes").hexdigest(),
                                 card={"k": 1})
    assert signing.verified_bytes(dataset="customer", model_version="customer-v1", path=inside,
                                  card={"k": 1}, signature=good) == b"model bytes"
    for dataset, version, card in (("medical", "customer-v1", {"k": 1}),
                                   ("customer", "customer-v2", {"k": 1}),
                                   ("customer", "customer-v1", {"k": 2})):
        with pytest.raises(signing.SignatureError, match="does not verify"):
            signing.verified_bytes(dataset=dataset, model_version=version, path=inside,
                                   card=card, signature=good)
