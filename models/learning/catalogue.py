"""The algorithm catalogue: every entry that can be trained, and the one way to build it.

`build_model(spec, algorithm, params, imbalance)` returns one unfitted pipeline that takes the
raw feature frame of the dataset spec: preprocessing, optional resampling (imblearn, so it only
ever sees training folds) and the classifier, optionally wrapped by a decision rule (tuned
per-class thresholds or cost-sensitive decision). The entries come from three places, named
here explicitly: the tabular ones (`models.learning.algorithms`), the text ones
(`models.learning.text`) and the ensembles (`models.learning.ensembles`); every entry says
which task kinds it serves. Ensembles are opt-in: they are found by name but not listed by
`algorithms_for` unless asked, so default runs and sweeps over the catalogue stay as fast as
they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.base import BaseEstimator

from models.data.spec import DatasetSpec, TaskKind
from models.learning.algorithms import (
    BOTH,
    TABULAR,
    TABULAR_ALGORITHMS,
    Algorithm,
    UnknownAlgorithmError,
    find_algorithm,
)
from models.learning.ensembles.stacking import ENSEMBLE_ALGORITHMS
from models.learning.imbalance import IMBALANCE_STRATEGIES, apply_imbalance, class_weight_for
from models.learning.preprocessing import build_preprocessor
from models.learning.text import TEXT_ALGORITHMS, build_text_preprocessor
from warehouse.errors import OvernightError

__all__ = ["BOTH", "CATALOGUE", "TABULAR", "Algorithm", "UnknownAlgorithmError",
           "algorithms_for", "build_model", "build_text_model", "get_algorithm"]

CATALOGUE: dict[str, Algorithm] = {
    a.name: a for a in (*TABULAR_ALGORITHMS, *TEXT_ALGORITHMS, *ENSEMBLE_ALGORITHMS)
}


def algorithms_for(kind: TaskKind, *, opt_in: bool = False) -> list[str]:
    """The entries serving `kind`; the opt-in ones (ensembles) only with `opt_in=True`."""
    return [name for name, a in CATALOGUE.items()
            if kind in a.kinds and (opt_in or not a.opt_in)]


def get_algorithm(name: str, kind: TaskKind | None = None) -> Algorithm:
    """The catalogue entry called `name` (serving `kind` when given)."""
    return find_algorithm(CATALOGUE, name, kind)


def build_model(
    spec: DatasetSpec,
    algorithm: str,
    params: Mapping[str, Any] | None = None,
    *,
    imbalance: str = "none",
    seed: int = 0,
    preprocessor: BaseEstimator | None = None,
) -> BaseEstimator:
    """One unfitted pipeline for the spec's raw features: preprocess, (resample,) classify."""
    entry = get_algorithm(algorithm, spec.kind)
    if imbalance not in IMBALANCE_STRATEGIES:
        raise OvernightError(
            f"unknown imbalance strategy {imbalance!r}; known: {', '.join(IMBALANCE_STRATEGIES)}"
        )
    classifier = entry.estimator(params, seed, class_weight_for(imbalance, spec), spec.kind)
    return apply_imbalance(
        imbalance,
        preprocessor if preprocessor is not None else build_preprocessor(spec),
        classifier,
        spec=spec,
        seed=seed,
    )


def build_text_model(spec: DatasetSpec, algorithm: str, params: Mapping[str, Any] | None = None,
                     *, vectoriser: str = "tfidf_bigram", headline_weight: float = 2.0,
                     imbalance: str = "none", seed: int = 0,
                     text_stats: bool = False) -> BaseEstimator:
    """One unfitted text pipeline: the text preprocessor (with the text statistics features,
    length, readability and sentiment, when `text_stats`), then the catalogue's classifier."""
    return build_model(spec, algorithm, params, imbalance=imbalance, seed=seed,
                       preprocessor=build_text_preprocessor(spec, vectoriser, headline_weight,
                                                            text_stats=text_stats))
