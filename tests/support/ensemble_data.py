"""Data and pipelines the ensemble tests share."""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline


def leaky_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two weakly informative columns, then ten pure-noise columns a 1-NN memorises."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = rng.normal(0, 1, (n, 2)) + 0.9 * y[:, None]
    return np.hstack([signal, rng.normal(0, 1, (n, 10))]), np.array(["no", "yes"])[y]


def on_columns(columns: list[int], estimator: object) -> Pipeline:
    """`estimator` fitted on the given columns only."""
    return Pipeline([("pick", ColumnTransformer([("c", "passthrough", columns)])),
                     ("model", estimator)])
