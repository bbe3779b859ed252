"""The reference profile: the reference side of every drift test, computed once per model version.

Why it exists. A night must read only its batch, so what the tests need of the champion's
reference data (`reference.parquet`, a sample of training rows kept beside the model) is
computed once and kept beside the artifact as `reference_profile.json`: sorted reference values
per numeric column, category counts, word counts and vocabulary per text column, and the
reference predicted-class counts. `profile_for_version` reads it, or builds and saves it the
first time. The profile and the night read frames the same way, so the frame check
(`check_frame`) and the champion's predicted classes (`prediction_column`, `predict_labels`)
live here too.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.data.spec import DatasetSpec, feature_frame
from models.registry.artifacts import PROFILE_FILE, REFERENCE_FILE
from models.registry.versions import ModelVersion, get_version, load_model
from monitoring.drift.statistics import (
    category_counts,
    finite_values,
    oov_share,
    words_and_tokens,
)
from monitoring.drift.verdict import DriftError

PROFILE_FORMAT = 1
PREDICTION = "prediction"
PREDICT_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class TextProfile:
    """What a night needs of one reference text column.

    `vocabulary` is built from one random half of the reference texts and `baseline_oov` is
    the out-of-vocabulary share of the other half against it: the OOV share to expect from
    new text of the same kind, measured against the same vocabulary the night uses.
    """

    word_counts: np.ndarray         # sorted, one per non-missing reference text
    vocabulary: frozenset[str]
    baseline_oov: float
    heldout_tokens: int


@dataclass(frozen=True)
class ReferenceProfile:
    """Reference statistics of one model version, computed once so a night reads only its batch.

    numeric: sorted finite reference values per column (the reference is a sample of at most
    5000 training rows, so exact values are kept and every test is exact); categorical:
    value -> count; text: `TextProfile`; prediction: predicted class -> count on the
    reference rows (None when built without a model).
    """

    dataset: str
    n_rows: int
    numeric: dict[str, np.ndarray]
    categorical: dict[str, dict[str, int]]
    text: dict[str, TextProfile]
    prediction: dict[str, int] | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    format: int = PROFILE_FORMAT


def _problems(frame: pd.DataFrame, spec: DatasetSpec, where: str) -> list[str]:
    """What makes a frame unusable for drift: missing, empty or non-numeric columns."""
    missing = [c for c in spec.feature_names if c not in frame.columns]
    problems = []
    if missing:
        problems.append(f"{where} lacks column(s) {', '.join(missing)} of the {spec.name} spec")
    empty, not_numeric = [], []
    for feature in spec.features:
        if feature.name not in frame.columns:
            continue
        values = frame[feature.name]
        if feature.type == "numeric":
            try:
                numbers = finite_values(values)
            except (TypeError, ValueError):
                not_numeric.append(feature.name)
                continue
            if numbers.size == 0:
                empty.append(feature.name)
        elif values.notna().sum() == 0:
            empty.append(feature.name)
    if empty:
        problems.append(f"column(s) {', '.join(empty)} of the {where} have no values "
                        "(all missing)")
    if not_numeric:
        problems.append(f"numeric column(s) {', '.join(not_numeric)} of the {where} hold "
                        "values that are not numbers")
    return problems


def check_frame(frame: pd.DataFrame, spec: DatasetSpec, where: str) -> None:
    """Raise one DriftError listing every problem of the frame (nothing is half-computed)."""
    if len(frame) == 0:
        raise DriftError(f"cannot compute drift for {spec.name}: the {where} is empty "
                         "(no rows to compare)")
    problems = _problems(frame, spec, where)
    if problems:
        raise DriftError(f"cannot compute drift for {spec.name}: " + "; ".join(problems))


def prediction_column(spec: DatasetSpec) -> str:
    """Name of the predicted-class column (`prediction`, unless a feature is called that)."""
    return PREDICTION if PREDICTION not in spec.feature_names else f"{PREDICTION}_"


def predict_labels(model: Any, frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """The model's predicted class of every row, as strings, in chunks to bound memory."""
    features = feature_frame(frame, spec)
    parts = [np.asarray(model.predict(features.iloc[start:start + PREDICT_CHUNK_ROWS]))
             for start in range(0, len(features), PREDICT_CHUNK_ROWS)]
    return np.concatenate(parts).astype(str) if parts else np.empty(0, dtype=str)


def _text_profile(texts: pd.Series, seed: int) -> TextProfile:
    """Word counts, vocabulary and baseline OOV share of one reference text column."""
    values = texts.dropna()
    word_counts, _ = words_and_tokens(values)
    order = np.random.default_rng(seed).permutation(len(values))
    half = len(values) // 2
    if half == 0:
        _, tokens = words_and_tokens(values)
        return TextProfile(np.sort(word_counts), frozenset(tokens), 0.0, 0)
    _, vocab_tokens = words_and_tokens(values.iloc[order[:half]])
    _, heldout = words_and_tokens(values.iloc[order[half:]])
    vocabulary = frozenset(vocab_tokens)
    return TextProfile(np.sort(word_counts), vocabulary, oov_share(heldout, vocabulary),
                       int(sum(heldout.values())))


def build_profile(reference: pd.DataFrame, spec: DatasetSpec, model: Any = None, *,
                  seed: int = 0) -> ReferenceProfile:
    """Reference statistics of every feature (and of the model's predictions, if given).

    Meant to run once, at training time, on the reference sample kept with the model.
    """
    check_frame(reference, spec, "reference data")
    numeric = {c: np.sort(finite_values(reference[c])) for c in spec.features_of_type("numeric")}
    categorical = {c: category_counts(reference[c])
                   for c in spec.features_of_type("categorical")}
    text = {c: _text_profile(reference[c], seed) for c in spec.features_of_type("text")}
    prediction = None
    if model is not None:
        prediction = category_counts(pd.Series(predict_labels(model, reference, spec)))
    return ReferenceProfile(spec.name, len(reference), numeric, categorical, text, prediction)


def save_profile(profile: ReferenceProfile, path: Path) -> Path:
    """Write the profile as JSON (atomically: a reader never sees half a file)."""
    document = {
        "format": profile.format, "dataset": profile.dataset, "n_rows": profile.n_rows,
        "created_at": profile.created_at, "model_version": profile.model_version,
        "model_sha256": profile.model_sha256,
        "numeric": {c: v.tolist() for c, v in profile.numeric.items()},
        "categorical": profile.categorical,
        "text": {c: {"word_counts": t.word_counts.tolist(),
                     "vocabulary": sorted(t.vocabulary), "baseline_oov": t.baseline_oov,
                     "heldout_tokens": t.heldout_tokens} for c, t in profile.text.items()},
        "prediction": profile.prediction,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=".profile-", dir=path.parent)
    with os.fdopen(handle, "w") as out:
        json.dump(document, out)
    os.replace(scratch, path)
    return path


def load_profile(path: Path) -> ReferenceProfile:
    """Read a profile written by `save_profile`; a DriftError if it cannot be used."""
    try:
        document = json.loads(Path(path).read_text())
        if document.get("format") != PROFILE_FORMAT:
            raise DriftError(f"reference profile {path} has format {document.get('format')}, "
                             f"expected {PROFILE_FORMAT}")
        return ReferenceProfile(
            dataset=document["dataset"], n_rows=int(document["n_rows"]),
            numeric={c: np.asarray(v, dtype=float) for c, v in document["numeric"].items()},
            categorical={c: {str(k): int(n) for k, n in v.items()}
                         for c, v in document["categorical"].items()},
            text={c: TextProfile(np.asarray(t["word_counts"], dtype=float),
                                 frozenset(t["vocabulary"]), float(t["baseline_oov"]),
                                 int(t["heldout_tokens"]))
                  for c, t in document["text"].items()},
            prediction=document.get("prediction"),
            model_version=document.get("model_version"),
            model_sha256=document.get("model_sha256"),
            created_at=document.get("created_at", ""), format=int(document["format"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DriftError(f"reference profile {path} cannot be read: {error}") from error


def profile_for_version(model_version: str | ModelVersion, *, spec: DatasetSpec | None = None,
                        model: Any = None) -> ReferenceProfile:
    """The reference profile of a model version: read from beside its artifact, or built once.

    Built from `reference.parquet` (and the model, for the prediction counts) when there is no
    usable `reference_profile.json` yet, then saved there so later nights only read it.
    A profile made for another artifact (sha256 differs) is rebuilt.
    """
    version = (model_version if isinstance(model_version, ModelVersion)
               else get_version(model_version))
    folder = version.artifact_path.parent
    path = folder / PROFILE_FILE
    if path.exists():
        try:
            profile = load_profile(path)
        except DriftError:
            profile = None
        if (profile is not None and profile.model_sha256 in (None, version.sha256)
                and profile.prediction is not None):
            return profile
    reference_path = folder / REFERENCE_FILE
    if not reference_path.exists():
        raise DriftError(f"model version {version.model_version} has no reference data "
                         f"({reference_path} is missing), so drift cannot be measured")
    if spec is None:
        spec = DatasetSpec.model_validate(version.card["input_schema"])
    if model is None:
        model, _ = load_model(version)
    profile = build_profile(pd.read_parquet(reference_path), spec, model)
    profile = replace(profile, model_version=version.model_version, model_sha256=version.sha256)
    save_profile(profile, path)
    return profile
