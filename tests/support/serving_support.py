"""Small real champions for the serving tests: fitted, registered and promoted in a data home."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models.data.datasets import builtin
from models.data.generators.base import STABLE
from models.learning.fit import make_model
from models.registry.artifacts import REFERENCE_FILE
from models.registry.versions import ModelVersion, promote, register_model
from models.reports.production import save_reference
from warehouse import connect, get_settings, migrate

DAY = date(2026, 11, 16)


@contextmanager
def data_home(home: Path, **env: str) -> Iterator[Path]:
    """A migrated data home chosen through the environment (plus `env`) for the block: what
    module-scoped fixtures use, since pytest's `monkeypatch` is per test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVERNIGHT_HOME", str(home))
        for key, value in env.items():
            patch.setenv(key, value)
        get_settings().ensure_dirs()
        with connect() as con:
            migrate(con)
        yield home


def sample(dataset: str, rows: int = 400, seed: int = 7) -> pd.DataFrame:
    return builtin(dataset).generate(DAY, rows, seed, STABLE)


def register_champion(dataset: str, *, algorithm: str = "logistic_regression", rows: int = 600,
                      seed: int = 0, promote_it: bool = True,
                      params: dict[str, Any] | None = None) -> ModelVersion:
    """Fit a small model of a built-in dataset, register it and (by default) promote it."""
    spec = builtin(dataset).spec
    frame = sample(dataset, rows, seed + 1)
    model = make_model(spec, algorithm, params, seed=seed)
    model.fit(frame[spec.feature_names], frame[spec.target])
    with tempfile.TemporaryDirectory() as scratch:
        reference = save_reference(frame, spec, Path(scratch) / REFERENCE_FILE)
        version = register_model(model, spec, algorithm=algorithm,
                                 metrics={"accuracy": 0.5, "f1_macro": 0.5},
                                 training_batches=[], attachments={REFERENCE_FILE: reference})
    if promote_it:
        promote(dataset, version.model_version, reason="test")
    return version


def records(dataset: str, rows: int = 5, seed: int = 11) -> list[dict[str, Any]]:
    """Raw feature records (JSON-ready) of a built-in dataset."""
    spec = builtin(dataset).spec
    frame = sample(dataset, rows, seed)[spec.feature_names]
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]
