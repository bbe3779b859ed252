"""Prediction ids: minted ids are recognised, ids minted before the BLAKE2b tag (HMAC-SHA256)
still are, and anything else is refused."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from models.serving import prediction_ids


def test_minted_and_earlier_ids_are_ours_and_nothing_else(home: Path) -> None:
    minted = prediction_ids.mint_many(50)
    assert len(set(minted)) == 50 and all(prediction_ids.is_ours(i) for i in minted)
    key = prediction_ids._key()
    part = secrets.token_hex(16)
    earlier = f"{part}.{hmac.new(key, part.encode(), hashlib.sha256).hexdigest()[:24]}"
    assert prediction_ids.is_ours(earlier)
    forged = [f"{part}.{'0' * 24}", f"{secrets.token_hex(16)}.{minted[0].split('.')[1]}",
              minted[0][:-1], minted[0] + "0", "", ".", f"{part}{minted[0][32:]}x"]
    assert not any(prediction_ids.is_ours(i) for i in forged)
