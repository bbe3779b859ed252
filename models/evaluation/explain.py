"""Explanations for any fitted pipeline of the catalogue: global, per segment and per prediction.

- `global_importance`: permutation importance per original column of the raw feature frame
  (model-agnostic, so it works for every algorithm and imbalance wrapper);
- `native_importance`: the classifier's own importances (trees) or mean |coefficient| (linear
  models) over the preprocessed feature names, None for models that have neither;
- `segment_profiles`: a statistical summary of the rows of each predicted class;
- `explain_prediction`: which features moved one prediction most, by replacing each feature
  with a reference value (`reference_values`) and measuring the drop in the predicted class's
  probability, all perturbed rows scored in one `predict_proba` call (fast enough to serve).

Every result is made of plain JSON values (numpy scalars converted, NaN turned into None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from models.data.spec import DatasetSpec, feature_frame
from models.evaluation.metrics import to_json


def fitted_pipeline(model: Any) -> Any:
    """The inner preprocess/classify pipeline of a model, unwrapping decision-rule wrappers."""
    while not hasattr(model, "named_steps") and hasattr(model, "estimator_"):
        model = model.estimator_
    if not hasattr(model, "named_steps"):
        raise TypeError(f"{type(model).__name__} is not a fitted pipeline of the catalogue")
    return model


def class_probabilities(model: Any, X: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """`predict_proba` with its columns in the order of `classes` (0 for classes never seen)."""
    proba = np.asarray(model.predict_proba(X), dtype=float)
    column = {str(c): i for i, c in enumerate(model.classes_)}
    out = np.zeros((proba.shape[0], len(classes)))
    for j, name in enumerate(classes):
        if str(name) in column:
            out[:, j] = proba[:, column[str(name)]]
    return out


# --------------------------------------------------------------------------- global


def global_importance(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    n_repeats: int = 5,
    seed: int = 0,
    max_rows: int = 2000,
    scoring: str = "f1_macro",
) -> list[dict[str, Any]]:
    """Permutation importance of each raw column, most important first.

    At most `max_rows` rows are used, chosen deterministically from `seed`. Importance is the
    mean drop of `scoring` over `n_repeats` shuffles of the column, `std` its spread.
    """
    target = np.asarray(y, dtype=object)
    if len(X) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))
        X, target = X.iloc[rows], target[rows]
    result = permutation_importance(
        model, X, target, scoring=scoring, n_repeats=n_repeats, random_state=seed, n_jobs=1
    )
    rows_out = [
        {"feature": str(name), "importance": mean, "std": std}
        for name, mean, std in zip(
            X.columns, result.importances_mean, result.importances_std, strict=True
        )
    ]
    rows_out.sort(key=lambda r: -r["importance"])
    return to_json(rows_out)


def native_importance(model: Any) -> list[dict[str, Any]] | None:
    """The classifier's own importances over the preprocessed features, None if it has none.

    Trees give `feature_importances_`; linear models the mean |coef_| over classes. Names come
    from the preprocessor (`x0`, `x1`, ... when it cannot name its outputs, e.g. text).
    """
    pipeline = fitted_pipeline(model)
    classifier = pipeline.named_steps["classify"]
    if hasattr(classifier, "feature_importances_"):
        values = np.asarray(classifier.feature_importances_, dtype=float)
    elif hasattr(classifier, "coef_"):
        values = np.abs(np.atleast_2d(np.asarray(classifier.coef_, dtype=float))).mean(axis=0)
    else:
        return None
    try:
        names = [str(n) for n in pipeline.named_steps["preprocess"].get_feature_names_out()]
    except AttributeError:
        names = [f"x{i}" for i in range(len(values))]
    rows = [{"feature": n, "importance": v} for n, v in zip(names, values, strict=True)]
    rows.sort(key=lambda r: -r["importance"])
    return to_json(rows)


# --------------------------------------------------------------------------- segments


def _numbers(column: pd.Series) -> pd.Series:
    """A column as floats, with non-numbers and infinities as NaN."""
    values = pd.to_numeric(column, errors="coerce").astype(float)
    return values.where(np.isfinite(values))


def segment_profiles(
    X: pd.DataFrame, predicted: Any, spec: DatasetSpec, *, top: int = 5
) -> dict[str, dict[str, Any]]:
    """Per predicted class: count, share, numeric summaries and the `top` categories' shares.

    Classes are the spec's, in its order (empty ones included), then any other predicted label.
    Text features are left out.
    """
    labels = np.asarray([str(v) for v in np.asarray(predicted, dtype=object).ravel()])
    if len(labels) != len(X):
        raise ValueError(f"{len(labels)} predictions for {len(X)} rows")
    frame = X.reset_index(drop=True)
    classes = [*spec.classes, *sorted(set(labels) - set(spec.classes))]
    profiles: dict[str, dict[str, Any]] = {}
    for name in classes:
        part = frame[labels == name]
        numeric = {}
        for feature in spec.features_of_type("numeric"):
            values = _numbers(part[feature])
            numeric[feature] = {
                "mean": values.mean(),
                "median": values.median(),
                "std": values.std(),
                "min": values.min(),
                "max": values.max(),
            }
        categorical = {}
        for feature in spec.features_of_type("categorical"):
            counts = part[feature].dropna().astype(str).value_counts().head(top)
            categorical[feature] = {str(k): v / len(part) for k, v in counts.items()}
        profiles[name] = {
            "count": len(part),
            "share": len(part) / len(frame) if len(frame) else 0.0,
            "numeric": numeric,
            "categorical": categorical,
        }
    return to_json(profiles)


# --------------------------------------------------------------------------- one prediction


def reference_values(X: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    """The reference row of `explain_prediction`: numeric medians and categorical modes."""
    reference: dict[str, Any] = {}
    for feature in spec.features_of_type("numeric"):
        reference[feature] = _numbers(X[feature]).median()
    for feature in spec.features_of_type("categorical"):
        modes = X[feature].dropna().astype(str).mode()
        reference[feature] = modes.iloc[0] if len(modes) else None
    return to_json(reference)


def _row_values(row: Mapping[str, Any] | pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    """One raw row as {feature: value} in the spec's feature order."""
    if isinstance(row, pd.DataFrame):
        if len(row) != 1:
            raise ValueError(f"explain_prediction takes one row, got {len(row)}")
        row = row.iloc[0].to_dict()
    missing = [name for name in spec.feature_names if name not in row]
    if missing:
        raise ValueError(f"row lacks the features: {', '.join(missing)}")
    return {name: row[name] for name in spec.feature_names}


def explain_prediction(
    model: Any,
    row: Mapping[str, Any] | pd.DataFrame,
    reference: Mapping[str, Any],
    spec: DatasetSpec,
    *,
    n: int = 5,
) -> dict[str, Any]:
    """The predicted class of one row, its probability and the `n` features that moved it most.

    A feature's contribution is the drop in the predicted class's probability when its value
    is replaced by the reference value (negative: the reference would make the class more
    likely). Text features are not perturbed. The predicted class follows the model's decision
    rule (least expected cost for a cost-sensitive model, else the most probable class).
    """
    base = _row_values(row, spec)
    features = [f.name for f in spec.features if f.type != "text"]
    records = [base, *({**base, name: reference.get(name)} for name in features)]
    frame = feature_frame(pd.DataFrame.from_records(records, columns=spec.feature_names), spec)
    proba = np.asarray(model.predict_proba(frame), dtype=float)
    if hasattr(model, "cost_"):         # cost-sensitive: the least expected cost decides
        index = int(np.argmin(proba[0] @ model.cost_))
    else:
        index = int(np.argmax(proba[0]))
    drops = proba[0, index] - proba[1:, index]
    contributions = [
        {"feature": name, "value": base[name], "reference": reference.get(name),
         "contribution": drop}
        for name, drop in zip(features, drops, strict=True)
    ]
    contributions.sort(key=lambda c: -abs(c["contribution"]))
    return to_json({
        "predicted_class": str(model.classes_[index]),
        "probability": proba[0, index],
        "contributions": contributions[:n],
    })
