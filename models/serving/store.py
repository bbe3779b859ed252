"""The models a serving process holds, and how it follows promotions without a restart.

A `ModelStore` keeps, for each configured dataset, the loaded champion (and the challenger
when shadow or canary traffic needs it). A daemon thread polls the alias manifest and the
traffic file; when either changes it loads the new versions in the background, verifying each
artifact's signature (made by the registry with a key outside the data home, bound to the
dataset, version, path under `artifacts/`, sha256 and card) on the bytes it then unpickles,
and swaps the reference. A request
reads the reference once, so it is answered wholly by the old model or wholly by the new one.
An entry that fails the check (unsigned, forged, changed, outside `artifacts/`) is refused:
the old model keeps serving, the refusal is remembered (not retried every second) and an
alert is landed for the warehouse.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from models.data.datasets import BUILTIN, builtin
from models.data.spec import DatasetSpec
from models.evaluation.conformal import ConformalError, ConformalRule
from models.registry import legacy_names, manifest, signing
from models.registry.artifacts import REFERENCE_FILE
from models.serving.schemas import record_model

log = logging.getLogger(__name__)


class RefusedArtifact(Exception):
    """A model artifact that is missing, unsigned, forged, changed since registration, outside
    the data home's artifacts folder, or that does not unpickle."""


@dataclass
class LoadedModel:
    """One verified, unpickled model version with what answering a request needs."""

    dataset: str
    alias: str
    model_version: str
    sha256: str
    model: Any
    spec: DatasetSpec
    card: dict[str, Any]
    artifact_path: Path
    # the conformal review rule of its card (None: a model from before, the old threshold),
    # read once at load, where a malformed entry refuses the artifact
    conformal: ConformalRule | None = None
    _reference: dict[str, Any] | None = field(default=None, repr=False)

    def reference(self) -> dict[str, Any]:
        """Typical values of the training data (the baseline of per-row explanations)."""
        if self._reference is None:
            from models.evaluation.explain import reference_values

            path = self.artifact_path.parent / REFERENCE_FILE
            frame = pd.read_parquet(path) if path.exists() else pd.DataFrame(
                columns=self.spec.feature_names)
            self._reference = reference_values(frame[self.spec.feature_names], self.spec)
        return self._reference


def load_verified(dataset: str, alias: str, entry: dict[str, Any]) -> LoadedModel:
    """Load a manifest entry's artifact once its signature verifies; refuse anything else.

    Nothing in the entry is trusted on its own (whoever writes the manifest writes its
    hashes): the signature must vouch for this dataset, version, path, card and the sha256 of
    the bytes read, and only those bytes are unpickled.
    """
    try:
        path = Path(entry["artifact_path"])
        version = str(entry["model_version"])
        card = entry["card"]
        data = signing.verified_bytes(
            dataset=dataset, model_version=version, path=path, card=card,
            signature=entry.get("signature"), expected_sha256=entry.get("sha256"))
    except signing.SigningError as error:
        raise RefusedArtifact(f"{alias} of {dataset}: {error}") from error
    except (KeyError, TypeError) as error:
        raise RefusedArtifact(f"{alias} of {dataset}: malformed manifest entry ({error!r})"
                              ) from error
    try:
        model = legacy_names.unpickle(data)
    except Exception as error:
        raise RefusedArtifact(f"artifact of {version} could not be loaded: {error}") from error
    try:
        rule = ConformalRule.from_card(card)
    except ConformalError as error:
        raise RefusedArtifact(f"{alias} of {dataset}: {error}") from error
    return LoadedModel(dataset, alias, version, hashlib.sha256(data).hexdigest(), model,
                       DatasetSpec.model_validate(card["input_schema"]), card, path, rule)


def _entry_fingerprint(entry: dict[str, Any]) -> tuple[Any, ...]:
    """What makes an entry a different candidate (a refusal is not retried until it changes)."""
    return (entry.get("model_version"), entry.get("artifact_path"), entry.get("sha256"),
            entry.get("signature"))


AlertSink = Callable[[str, str, dict[str, Any]], None]   # (dataset, message, details)


class ModelStore:
    """Champions (and challengers when needed) of the configured datasets, kept current."""

    def __init__(self, datasets: list[str] | None = None, *, poll_seconds: float = 1.0,
                 on_refused: AlertSink | None = None) -> None:
        self.poll_seconds = poll_seconds
        self.on_refused = on_refused
        self._models: dict[tuple[str, str], LoadedModel] = {}
        # (dataset, alias) -> what was refused (version, path, sha256, signature)
        self._refused: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._problems: dict[str, str] = {}
        self._lock = threading.Lock()
        self._seen: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.traffic = manifest.read_traffic()
        snapshot = manifest.read_aliases() or {"datasets": {}}
        self.follow_new = not datasets   # no list given: also serve datasets that get
        self.datasets = sorted(datasets or snapshot["datasets"])   # a champion later
        self.specs: dict[str, DatasetSpec] = {}
        for name in self.datasets:
            champion = snapshot["datasets"].get(name, {}).get("champion")
            if champion is not None:
                self.specs[name] = DatasetSpec.model_validate(champion["card"]["input_schema"])
            elif name in BUILTIN:
                self.specs[name] = builtin(name).spec
        self.records: dict[str, type[BaseModel]] = {
            name: record_model(spec) for name, spec in self.specs.items()}
        self.reloads = 0

    # ------------------------------------------------------------------ reading

    def get(self, dataset: str, alias: str = "champion") -> LoadedModel | None:
        return self._models.get((dataset, alias))

    def problem(self, dataset: str) -> str | None:
        """Why a dataset has no champion to serve (None when it has one)."""
        if self.get(dataset) is not None:
            return None
        return self._problems.get(dataset, f"dataset {dataset!r} has no champion model yet")

    def ready(self) -> bool:
        return all(self.get(d) is not None for d in self.datasets)

    # ------------------------------------------------------------------ reloading

    def _fingerprint(self) -> tuple[Any, ...]:
        stats: list[tuple[int, int, int] | None] = []
        for path in (manifest.aliases_path(), manifest.traffic_path()):
            try:
                info = path.stat()
                stats.append((info.st_mtime_ns, info.st_size, info.st_ino))
            except FileNotFoundError:
                stats.append(None)
        return tuple(stats)

    def refresh(self, *, force: bool = False) -> list[str]:
        """Load what the manifest names and this process does not hold; return the switches.

        With `force`, versions refused earlier are tried again (an operator fixed a file).
        """
        with self._lock:
            self._seen = self._fingerprint()
            self.traffic = manifest.read_traffic()
            snapshot = manifest.read_aliases() or {"datasets": {}}
            if force:
                self._refused.clear()
            switched = []
            if self.follow_new:
                self._adopt_new(snapshot)
            for dataset in self.datasets:
                entries = snapshot["datasets"].get(dataset, {})
                traffic = self.traffic.for_dataset(dataset)
                wanted = ["champion"]
                if traffic.shadow or traffic.canary_share > 0:
                    wanted.append("challenger")
                for alias in ("champion", "challenger"):
                    entry = entries.get(alias)
                    if alias not in wanted or entry is None:
                        if alias == "challenger":
                            self._models.pop((dataset, alias), None)
                        continue
                    if self._switch(dataset, alias, entry):
                        switched.append(f"{dataset}:{alias}={entry['model_version']}")
            if switched:
                self.reloads += 1
            return switched

    def _switch(self, dataset: str, alias: str, entry: dict[str, Any]) -> bool:
        current = self._models.get((dataset, alias))
        key = (dataset, alias)
        if current is not None and current.model_version == entry["model_version"] \
                and current.sha256 == entry.get("sha256"):
            return False
        if self._refused.get(key) == _entry_fingerprint(entry):
            return False
        try:
            loaded = load_verified(dataset, alias, entry)
        except RefusedArtifact as error:
            self._refused[key] = _entry_fingerprint(entry)
            if alias == "champion" and current is None:
                self._problems[dataset] = str(error)
            keeping = f"; still serving {current.model_version}" if current else ""
            log.error("refused %s %s: %s%s", dataset, alias, error, keeping)
            if self.on_refused is not None:
                self.on_refused(dataset, f"{error}{keeping}", {
                    "alias": alias, "model_version": entry["model_version"],
                    "kept": current.model_version if current else None})
            return False
        self._models[key] = loaded
        self._problems.pop(dataset, None)
        if dataset not in self.specs:
            self.specs[dataset] = loaded.spec
        if dataset not in self.records:
            self.records[dataset] = record_model(self.specs[dataset])
        return True

    def _adopt_new(self, snapshot: dict[str, Any]) -> None:
        """Datasets whose first champion appeared after start: served from this reload on
        (their spec and record schema come from the champion once it is verified)."""
        new = [d for d, e in snapshot["datasets"].items()
               if d not in self.datasets and e.get("champion") is not None]
        if new:
            self.datasets = sorted([*self.datasets, *new])   # one swap: readers see either

    def record_of(self, dataset: str) -> type[BaseModel]:
        """The record schema of a dataset (made from its spec when first asked)."""
        if dataset not in self.records:
            self.records[dataset] = record_model(self.specs[dataset])
        return self.records[dataset]

    def poll_once(self) -> list[str]:
        """Refresh when the manifest or traffic file changed since the last look."""
        if self._fingerprint() == self._seen:
            return []
        return self.refresh()

    def start(self) -> None:
        """Poll from a daemon thread (one per worker process, started after the fork)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="model-reload", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # a bad file must not kill the thread; the next tick retries
                log.exception("model reload failed")

    def stop(self) -> None:
        self._stop.set()
