"""The files serving reads instead of the warehouse: the alias manifest and the traffic file.

The serving processes never open the warehouse (a DuckDB file admits one writing process and
blocks even readers while it writes). Every alias switch therefore also publishes a manifest,
`serving/aliases.json`: for each dataset and alias, the version, its artifact path, the sha256
recorded by the registry, the model card and the registry's signature over all of these
(`models.registry.signing`). Workers poll the file and reload on change; they trust nothing in it
but
what the signature vouches for, since anyone who can write this file can write its hashes.
`serving/traffic.json` holds the shadow / canary settings that admin calls change, so every
worker process follows one setting. Both files are replaced atomically (write, then rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, Field

from warehouse import connect, get_settings

ALIASES_FILE = "aliases.json"
TRAFFIC_FILE = "traffic.json"


def write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Readers see the old file or the new one, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(payload, out, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def aliases_path() -> Path:
    return get_settings().serving_dir / ALIASES_FILE


def traffic_path() -> Path:
    return get_settings().serving_dir / TRAFFIC_FILE


def alias_snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Every dataset's aliases with what serving needs to load and verify each version."""
    rows = con.execute(
        "SELECT a.dataset, a.alias, m.model_version, m.artifact_path, m.sha256, m.card,"
        " s.signature FROM model_aliases a JOIN model_versions m USING (model_version)"
        " LEFT JOIN model_signatures s USING (model_version)"
        " ORDER BY a.dataset, a.alias").fetchall()
    change = con.execute("SELECT coalesce(max(change_id), 0) FROM alias_history").fetchone()
    datasets: dict[str, dict[str, Any]] = {}
    for dataset, alias, version, path, sha, card, signature in rows:
        datasets.setdefault(dataset, {})[alias] = {
            "model_version": version, "artifact_path": path, "sha256": sha,
            "card": json.loads(card), "signature": signature}
    return {"change_id": int(change[0]) if change else 0,
            "published_at": datetime.now(UTC).isoformat(), "datasets": datasets}


def publish_snapshot(snapshot: dict[str, Any]) -> None:
    """Write a snapshot unless the file already holds a later alias change."""
    path = aliases_path()
    current = read_aliases(path)
    if current is not None and current.get("change_id", 0) > snapshot["change_id"]:
        return
    write_json_atomically(path, snapshot)


def publish_from_warehouse() -> dict[str, Any]:
    """Rebuild the manifest from the warehouse (at `overnight serve` start, or by hand)."""
    with connect(read_only=True) as con:
        snapshot = alias_snapshot(con)
    write_json_atomically(aliases_path(), snapshot)
    return snapshot


def unsigned_entries(snapshot: dict[str, Any]) -> list[str]:
    """The versions a snapshot names without a signature (a home registered before signing)."""
    return sorted({entry["model_version"] for entries in snapshot["datasets"].values()
                   for entry in entries.values() if not entry.get("signature")})


def read_aliases(path: Path | None = None) -> dict[str, Any] | None:
    path = path or aliases_path()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


class DatasetTraffic(BaseModel):
    """How one dataset's requests are shared between the champion and the challenger."""

    canary_share: float = Field(default=0.0, ge=0.0, le=1.0,
                                description="Share of requests the challenger answers.")
    shadow: bool = Field(default=False,
                         description="The challenger also scores every request (logged only).")


class Traffic(BaseModel):
    datasets: dict[str, DatasetTraffic] = Field(default_factory=dict)
    reload_token: str = Field(default="", description="Changed to make every worker reload.")

    def for_dataset(self, dataset: str) -> DatasetTraffic:
        return self.datasets.get(dataset, DatasetTraffic())


def read_traffic(path: Path | None = None) -> Traffic:
    path = path or traffic_path()
    try:
        return Traffic.model_validate_json(path.read_text())
    except FileNotFoundError:
        return Traffic()


def write_traffic(traffic: Traffic, path: Path | None = None) -> None:
    write_json_atomically(path or traffic_path(), traffic.model_dump(mode="json"))
