"""Comparing text vectorisers and algorithms on one split (`overnight text compare`, the
benchmarks). It sits beside the text package, not in it, because it builds models through the
catalogue, which itself assembles the text entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from models.data.spec import DatasetSpec
from models.evaluation.metrics import evaluate
from models.learning.catalogue import build_text_model
from models.learning.text.explain import class_proba
from models.learning.text.vectorisers import VECTORISERS


def compare_vectorisers(frame: pd.DataFrame, spec: DatasetSpec,
                        vectorisers: Sequence[str] = tuple(VECTORISERS),
                        model: str | Sequence[str] = "logistic_regression", seed: int = 0,
                        test_size: float = 0.25, headline_weight: float = 2.0) -> pd.DataFrame:
    """Accuracy, macro F1 and fit/predict seconds per (vectoriser, model), best first.

    Every pair is fitted on the same stratified training split and scored on the held-out
    rest; predict seconds include cleaning and vectorising the held-out texts.
    """
    X_train, X_test, y_train, y_test = train_test_split(
        frame[spec.feature_names], frame[spec.target].astype(str), test_size=test_size,
        stratify=frame[spec.target].astype(str), random_state=seed,
    )
    return compare_vectorisers_on(X_train, y_train, X_test, y_test, spec, vectorisers,
                                  model, seed=seed, headline_weight=headline_weight)


def compare_vectorisers_on(X_train: pd.DataFrame, y_train: Any, X_test: pd.DataFrame,
                           y_test: Any, spec: DatasetSpec, vectorisers: Sequence[str],
                           model: str | Sequence[str] = "logistic_regression", *,
                           seed: int = 0, headline_weight: float = 2.0) -> pd.DataFrame:
    """`compare_vectorisers` on a split given (a training run's own), best first."""
    models = [model] if isinstance(model, str) else list(model)
    y_train = pd.Series(np.asarray(y_train, dtype=object)).astype(str).to_numpy()
    y_test = pd.Series(np.asarray(y_test, dtype=object)).astype(str).to_numpy()
    rows = []
    for vectoriser in vectorisers:
        for name in models:
            pipeline = build_text_model(spec, name, vectoriser=vectoriser,
                                        headline_weight=headline_weight, seed=seed)
            start = perf_counter()
            pipeline.fit(X_train, y_train)
            fitted = perf_counter()
            proba = class_proba(pipeline, X_test, spec.classes)
            predicted = perf_counter()
            metrics = evaluate(y_test, proba, spec.classes)
            rows.append({
                "vectoriser": vectoriser,
                "model": name,
                "accuracy": metrics["accuracy"],
                "f1_macro": metrics["f1_macro"],
                "fit_seconds": fitted - start,
                "predict_seconds": predicted - fitted,
                "n_train": len(X_train),
                "n_test": len(X_test),
            })
    table = pd.DataFrame(rows)
    return table.sort_values(["accuracy", "f1_macro"], ascending=False, kind="stable",
                             ignore_index=True)
