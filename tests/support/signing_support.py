"""What an attacker who can write the data home would write: a pickle that runs code when it
is loaded (it creates a canary file), and manifest entries forged around it."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import joblib

from models.registry import manifest


class Canary:
    """Unpickling this calls `open(path, "w")`: the canary file appears iff code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def canary_pickle(artifact: Path, canary: Path) -> str:
    """Write the evil artifact; return its sha256 (what a forger writes beside its path)."""
    artifact.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(Canary(canary), artifact)
    return hashlib.sha256(artifact.read_bytes()).hexdigest()


def forge_champion(dataset: str, **changes: Any) -> dict[str, Any]:
    """Rewrite the manifest's champion entry of `dataset` with `changes` (the same change id,
    so a later legitimate publication still replaces it); returns the forged entry."""
    snapshot = manifest.read_aliases()
    assert snapshot is not None
    forged = copy.deepcopy(snapshot)
    entry = forged["datasets"][dataset]["champion"]
    entry.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        entry.pop(key)
    manifest.write_json_atomically(manifest.aliases_path(), forged)
    return entry
