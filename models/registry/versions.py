"""The model registry over the warehouse: versions, verified artifacts, and aliases.

A model version is one fitted pipeline saved with joblib under the data home, beside a JSON
model card (dataset, input schema, classes, metrics, training batches, library versions, code
version, sha256 of the artifact). Registration also signs the artifact (`models.registry.signing`:
HMAC-SHA256 with a key kept outside the data home, over the artifact's digest bound to its
dataset, version, path and card); loading verifies that signature on the bytes it reads
before unpickling them, so a tampered, truncated, swapped or unsigned artifact is refused.
Aliases (`champion`, `challenger`, `previous`) point at versions; every switch happens in
one transaction and is kept in `alias_history`, so a promotion or a rollback is atomic and
auditable. After each switch commits, the aliases are published to the serving manifest
(`models.registry.manifest`), which the serving workers follow without opening the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import joblib

from models.data.spec import DatasetSpec
from models.registry import legacy_names, signing
from models.registry.artifacts import CARD_FILE, MODEL_FILE
from models.registry.manifest import alias_snapshot, publish_from_warehouse, publish_snapshot
from warehouse import connect, get_settings, transaction
from warehouse.errors import OvernightError

ALIASES = ("champion", "challenger", "previous")
LIBRARIES = ("scikit-learn", "imbalanced-learn", "numpy", "pandas", "scipy", "joblib", "nltk")


class RegistryError(OvernightError):
    pass


class ArtifactIntegrityError(RegistryError):
    """The artifact on disk is not the one that was registered, or its signature fails."""


@dataclass(frozen=True)
class ModelVersion:
    model_version: str
    dataset: str
    version: int
    algorithm: str
    artifact_path: Path
    sha256: str
    card: dict[str, Any]
    signature: str | None = None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def code_version() -> str:
    """The git commit of the source tree when there is one, else the package version."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).parent)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return metadata.version("overnight")
    except metadata.PackageNotFoundError:
        return "unknown"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def register_model(
    model: Any,
    spec: DatasetSpec,
    *,
    algorithm: str,
    metrics: dict[str, Any],
    training_batches: list[str],
    run_id: str | None = None,
    params: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    trained_at: datetime | None = None,
    attachments: dict[str, Path] | None = None,
    within: Callable[[duckdb.DuckDBPyConnection, ModelVersion], None] | None = None,
) -> ModelVersion:
    """Save a fitted pipeline and its card, and record the new version in one transaction.

    The artifact is written to a staging folder first; the version number is allocated
    inside the transaction (DuckDB lets one process write at a time), and the staging folder
    is moved into place before the row is committed, so a crash leaves no row without files.
    `attachments` are copied beside the artifact (e.g. the reference data of drift checks);
    `within(con, version)` runs inside the same transaction, so rows that belong with the new
    version (a training run, its candidate results, an alias) land with it or not at all.
    """
    root = get_settings().artifacts_dir / spec.name
    root.mkdir(parents=True, exist_ok=True)
    key = signing.signing_key(create=True)        # a key problem stops before anything is written
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        artifact = staging / MODEL_FILE
        joblib.dump(model, artifact, compress=3)
        sha = file_sha256(artifact)
        for name, source in (attachments or {}).items():
            shutil.copyfile(source, staging / name)
        trained = trained_at or _now()
        with transaction() as con:
            row = con.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions"
                              " WHERE dataset = ?", [spec.name]).fetchone()
            version = int(row[0]) if row else 1
            name = f"{spec.name}-v{version}"
            final = root / f"v{version}"
            card = {
                "model_version": name, "dataset": spec.name, "version": version,
                "algorithm": algorithm, "run_id": run_id, "target": spec.target,
                "classes": list(spec.classes), "input_schema": spec.model_dump(mode="json"),
                "metrics": metrics, "params": params or {}, "training_batches": training_batches,
                "libraries": library_versions(), "code_version": code_version(),
                "sha256": sha, "artifact": MODEL_FILE,
                "attachments": sorted(attachments or {}),
                "trained_at": trained.isoformat(), **(extra or {}),
            }
            (staging / CARD_FILE).write_text(json.dumps(card, indent=2, default=str))
            if final.exists():          # left over by a crash before its row was committed
                shutil.rmtree(final)
            os.replace(staging, final)
            con.execute(
                "INSERT INTO model_versions (model_version, dataset, version, algorithm, run_id,"
                " artifact_path, sha256, card, metrics, training_batches, trained_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, spec.name, version, algorithm, run_id, str(final / MODEL_FILE), sha,
                 json.dumps(card, default=str), json.dumps(metrics, default=str),
                 training_batches, trained, _now()],
            )
            signature = _record_signature(con, name, spec.name, final / MODEL_FILE, sha,
                                          card, key)
            registered = ModelVersion(name, spec.name, version, algorithm,
                                      final / MODEL_FILE, sha, card, signature)
            try:
                if within is not None:
                    within(con, registered)
            except BaseException:
                shutil.rmtree(final, ignore_errors=True)
                raise
            snapshot = alias_snapshot(con)
        publish_snapshot(snapshot)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return registered


def _record_signature(con: duckdb.DuckDBPyConnection, model_version: str, dataset: str,
                      path: Path, sha: str, card: dict[str, Any], key: bytes) -> str:
    """Sign a version's statement and store the signature (inside the caller's transaction)."""
    claim = signing.statement(dataset=dataset, model_version=model_version,
                              artifact=signing.relative_artifact_path(path), sha256=sha, card=card)
    signature = signing.sign(claim, key)
    con.execute(
        "INSERT INTO model_signatures VALUES (?, ?, ?, ?, ?) ON CONFLICT (model_version)"
        " DO UPDATE SET signature = excluded.signature, statement = excluded.statement,"
        " key_id = excluded.key_id, signed_at = excluded.signed_at",
        [model_version, signature, json.dumps(claim), signing.key_id(key), _now()])
    return signature


def _row_to_version(row: tuple[Any, ...]) -> ModelVersion:
    return ModelVersion(row[0], row[1], int(row[2]), row[3], Path(row[4]), row[5],
                        json.loads(row[6]), row[7])


# Constant SQL fragments of ours (no user text): the columns of a version and where they live.
_VERSION_COLUMNS = ("model_version, dataset, version, algorithm, artifact_path, sha256, card,"
                    " s.signature")
_VERSION_FROM = "model_versions LEFT JOIN model_signatures s USING (model_version)"


def get_version(model_version: str, con: duckdb.DuckDBPyConnection | None = None
                ) -> ModelVersion:
    if con is None:
        with connect(read_only=True) as own:
            return get_version(model_version, own)
    row = con.execute(f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM}"
                      " WHERE model_version = ?", [model_version]).fetchone()
    if row is None:
        raise RegistryError(f"no model version {model_version!r} in the registry")
    return _row_to_version(row)


def list_versions(dataset: str | None = None) -> list[ModelVersion]:
    with connect(read_only=True) as con:
        rows = con.execute(
            f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM}"
            " WHERE ($d::VARCHAR IS NULL OR dataset = $d::VARCHAR) ORDER BY dataset, version",
            {"d": dataset}).fetchall()
    return [_row_to_version(r) for r in rows]


def verified_bytes(version: ModelVersion) -> bytes:
    """The artifact's bytes once its path, sha256 and signature check out; refuse otherwise.

    The signature is the one the warehouse holds: a sha256 in the same row as the path would
    prove nothing against someone who can write the warehouse, the key-made signature does.
    """
    try:
        return signing.verified_bytes(
            dataset=version.dataset, model_version=version.model_version,
            path=version.artifact_path, card=version.card, signature=version.signature,
            expected_sha256=version.sha256)
    except signing.SigningKeyError:
        raise
    except signing.SignatureError as error:
        raise ArtifactIntegrityError(str(error)) from error


def verify_artifact(version: ModelVersion) -> None:
    """Refuse an artifact that is missing, changed, unsigned or whose signature fails."""
    verified_bytes(version)


def load_model(model_version: str | ModelVersion) -> tuple[Any, ModelVersion]:
    """The fitted pipeline of a version, unpickled from bytes whose signature verified."""
    version = model_version if isinstance(model_version, ModelVersion) else get_version(
        model_version)
    data = verified_bytes(version)
    try:
        return legacy_names.unpickle(data), version
    except Exception as error:  # a verified file that fails to unpickle: report, don't crash
        raise ArtifactIntegrityError(
            f"artifact of {version.model_version} could not be loaded: {error}") from error


def load_judged_model(model_version: str | ModelVersion) -> tuple[Any, ModelVersion]:
    """The fit of a version that never saw its held-out rows: the one to judge on them.

    A version trained with refit_full serves `model.joblib` fitted on every labelled row,
    held-out rows included, so scoring it on `holdout.parquet` would flatter it. Its card's
    `fits.judged` names the winner's fit on the training split (the fit the card's metrics
    describe) and that file's sha256; the card is covered by the version's signature, which
    is verified first, so the sha256 check of the judged file inherits it. Versions without
    `fits.judged` (no refit) are judged on their artifact, as `load_model` loads it.
    """
    model, version = load_model(model_version)
    judged = (version.card.get("fits") or {}).get("judged") or {}
    if not judged.get("file"):
        return model, version
    name = str(judged["file"])
    if Path(name).name != name:
        raise ArtifactIntegrityError(f"{version.model_version}: judged fit {name!r} is not a "
                                     "file beside the artifact")
    path = version.artifact_path.parent / name
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ArtifactIntegrityError(f"judged fit of {version.model_version} cannot be read: "
                                     f"{error}") from error
    if hashlib.sha256(data).hexdigest() != judged.get("sha256"):
        raise ArtifactIntegrityError(f"judged fit of {version.model_version} at {path} is not "
                                     "the file its signed card names; refusing it")
    return legacy_names.unpickle(data), version


@dataclass(frozen=True)
class SignOutcome:
    model_version: str
    status: str          # 'signed', 'already signed', 'refused'
    detail: str


def _sign_outcome(con: duckdb.DuckDBPyConnection, version: ModelVersion, key: bytes
                  ) -> SignOutcome:
    """Sign one registered version when its file is the one the warehouse recorded."""
    name = version.model_version
    if version.signature:
        try:
            signing.verified_bytes(
                dataset=version.dataset, model_version=name, path=version.artifact_path,
                card=version.card, signature=version.signature, expected_sha256=version.sha256,
                key=key)
            return SignOutcome(name, "already signed", "its signature verifies")
        except signing.SignatureError:
            pass                      # signed with another key, or changed: checked below
    path = version.artifact_path
    try:
        signing.relative_artifact_path(path, name)
        actual = file_sha256(path.resolve())
    except signing.SignatureError as error:
        return SignOutcome(name, "refused", str(error))
    except OSError as error:
        return SignOutcome(name, "refused", f"artifact of {name} cannot be read: {error}")
    if actual != version.sha256:
        return SignOutcome(name, "refused", f"artifact of {name} at {path} has sha256 "
                           f"{actual[:12]}..., the warehouse recorded {version.sha256[:12]}...; "
                           "not signing a changed file")
    _record_signature(con, name, version.dataset, path, actual, version.card, key)
    return SignOutcome(name, "signed", f"sha256 {actual[:12]}... matches the warehouse")


def sign_registered(dataset: str | None = None) -> list[SignOutcome]:
    """Sign every registered version (of one dataset) whose artifact still has the sha256
    the warehouse recorded, then republish the serving manifest: the one-time step that
    brings a home made before signing into service. Idempotent: versions whose signature
    verifies are left alone; a file whose hash differs is refused, never signed."""
    key = signing.signing_key(create=True)
    with transaction() as con:
        rows = con.execute(
            f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM}"
            " WHERE ($d::VARCHAR IS NULL OR dataset = $d::VARCHAR) ORDER BY dataset, version",
            {"d": dataset}).fetchall()
        outcomes = [_sign_outcome(con, _row_to_version(r), key) for r in rows]
    publish_from_warehouse()
    return outcomes


def get_alias(dataset: str, alias: str, con: duckdb.DuckDBPyConnection | None = None
              ) -> str | None:
    if con is None:
        with connect(read_only=True) as own:
            return get_alias(dataset, alias, own)
    row = con.execute("SELECT model_version FROM model_aliases WHERE dataset = ? AND alias = ?",
                      [dataset, alias]).fetchone()
    return row[0] if row else None


def aliases(dataset: str) -> dict[str, str]:
    with connect(read_only=True) as con:
        rows = con.execute("SELECT alias, model_version FROM model_aliases WHERE dataset = ?",
                           [dataset]).fetchall()
    return dict(rows)


def set_alias_in(con: duckdb.DuckDBPyConnection, dataset: str, alias: str,
                 version: str | None, *, reason: str, changed_by: str = "overnight") -> None:
    """Switch an alias inside the caller's transaction (e.g. with a new version)."""
    _check_alias(alias)
    _set(con, dataset, alias, version, reason, changed_by)


def _set(con: duckdb.DuckDBPyConnection, dataset: str, alias: str, version: str | None,
         reason: str, changed_by: str) -> None:
    previous = get_alias(dataset, alias, con)
    if previous == version:
        return
    if version is None:
        con.execute("DELETE FROM model_aliases WHERE dataset = ? AND alias = ?", [dataset, alias])
    else:
        con.execute(
            "INSERT INTO model_aliases VALUES (?, ?, ?, ?) ON CONFLICT (dataset, alias)"
            " DO UPDATE SET model_version = excluded.model_version,"
            " updated_at = excluded.updated_at", [dataset, alias, version, _now()])
    con.execute(
        "INSERT INTO alias_history (dataset, alias, model_version, previous_version, reason,"
        " changed_by, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [dataset, alias, version, previous, reason, changed_by, _now()])


def _check_alias(alias: str) -> None:
    if alias not in ALIASES:
        raise RegistryError(f"unknown alias {alias!r}; aliases are {', '.join(ALIASES)}")


def set_alias(dataset: str, alias: str, model_version: str, *, reason: str,
              changed_by: str = "overnight") -> None:
    """Point one alias at a version (one transaction, with history)."""
    _check_alias(alias)
    with transaction() as con:
        version = get_version(model_version, con)
        if version.dataset != dataset:
            raise RegistryError(f"{model_version} belongs to {version.dataset}, not {dataset}")
        _set(con, dataset, alias, model_version, reason, changed_by)
        snapshot = alias_snapshot(con)
    publish_snapshot(snapshot)


def promote(dataset: str, model_version: str, *, reason: str,
            changed_by: str = "overnight") -> str | None:
    """Make a version champion; the old champion becomes `previous`. Returns the old one."""
    with transaction() as con:
        version = get_version(model_version, con)
        if version.dataset != dataset:
            raise RegistryError(f"{model_version} belongs to {version.dataset}, not {dataset}")
        old = get_alias(dataset, "champion", con)
        if old == model_version:
            return old
        if old is not None:
            _set(con, dataset, "previous", old, f"replaced: {reason}", changed_by)
        _set(con, dataset, "champion", model_version, reason, changed_by)
        if get_alias(dataset, "challenger", con) == model_version:
            _set(con, dataset, "challenger", None, "promoted to champion", changed_by)
        snapshot = alias_snapshot(con)
    publish_snapshot(snapshot)
    return old


def rollback(dataset: str, *, reason: str, changed_by: str = "overnight") -> str:
    """Swap champion and previous in one transaction; returns the restored champion."""
    with transaction() as con:
        previous = get_alias(dataset, "previous", con)
        current = get_alias(dataset, "champion", con)
        if previous is None:
            raise RegistryError(f"dataset {dataset!r} has no previous champion to roll back to")
        _set(con, dataset, "champion", previous, f"rollback: {reason}", changed_by)
        if current is not None:
            _set(con, dataset, "previous", current, f"rolled back: {reason}", changed_by)
        snapshot = alias_snapshot(con)
    publish_snapshot(snapshot)
    return previous


def alias_history(dataset: str, alias: str | None = None) -> list[dict[str, Any]]:
    with connect(read_only=True) as con:
        rows = con.execute(
            "SELECT change_id, alias, model_version, previous_version, reason, changed_by,"
            " changed_at FROM alias_history WHERE dataset = $d"
            " AND ($a::VARCHAR IS NULL OR alias = $a::VARCHAR) ORDER BY change_id",
            {"d": dataset, "a": alias}).fetchall()
    keys = ("change_id", "alias", "model_version", "previous_version", "reason", "changed_by",
            "changed_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]
