"""Per-group figures of a classifier's predictions, with fairlearn's `MetricFrame`.

Both the validation gate (`monitoring.gate.check_fairness`, which decides) and the model report
(which shows the table) use `group_fairness`, so what refuses a model and what a reader sees
are the same numbers.

Our tasks are multiclass, while fairlearn's `equalized_odds_difference` and
`demographic_parity_difference` are defined for a binary prediction. Each is therefore computed
one-vs-rest per class (class c against every other class) and the dataset's figure is the worst
class: for each class, a `MetricFrame` over the groups holds recall (true positive rate), false
positive rate, precision and selection rate of that class, and its between-groups
`difference()` is the largest minus the smallest group value (a group without any row of the
class has no recall for it and is left out of that difference, not counted as 0).

- recall gap: the difference between groups of the macro recall: is one group's truth found
  less often?
- equalized-odds difference: per class, the larger of the true-positive-rate and the
  false-positive-rate differences (fairlearn's definition, "worst case"), then the max over
  classes: are the errors shared equally?
- demographic-parity difference: per class, the difference of the rate of predicting that
  class, then the max over classes. It is reported, and blocks only when a policy asks for it:
  the true prevalence of a segment or disease may differ by group, and a model that follows
  that difference is right to.

Groups with fewer than `min_group_rows` rows are left out (their rates are noise), and listed;
a group's rate resting on fewer than `min_class_rows` rows of the class (recall) or of the other
classes (false positive rate) is left out of the differences, and the macro recall of the
recall gap is over the classes every group measures that way (`classes_in_recall_gap`). Each
figure comes with a permutation p-value (group labels shuffled over the same rows), so the gate
can tell a gap of the model from a gap of a small sample.
Every value returned is a plain float, str, int or None: the gate's evidence goes to the
warehouse as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

MIN_GROUP_ROWS = 20
MIN_CLASS_ROWS = 10      # rows of a class (or of the other classes) behind a group's rate
PERMUTATIONS = 500       # the smallest p-value is 1/501: room below FAIRNESS_ALPHA / tests
FAIRNESS_ALPHA = 0.01


def _rate(hits: np.ndarray) -> float:
    """Mean of a boolean array, NaN when it is empty (an undefined rate, not a zero one)."""
    return float(np.mean(hits)) if len(hits) else math.nan


def recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return _rate(y_pred[y_true.astype(bool)])


def false_positive_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return _rate(y_pred[~y_true.astype(bool)])


def precision(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return _rate(y_true[y_pred.astype(bool)])


def selection_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return _rate(y_pred)


METRICS = {"recall": recall, "false_positive_rate": false_positive_rate,
           "precision": precision, "selection_rate": selection_rate}


def _plain(value: Any) -> float | None:
    """A JSON-safe float: NaN (undefined) becomes None."""
    value = float(value)
    return None if math.isnan(value) else round(value, 4)


def _per_class(y: pd.Series, predicted: pd.Series, groups: pd.Series,
               classes: Sequence[str]) -> dict[str, Any]:
    """One fairlearn MetricFrame per class (one-vs-rest) over the groups."""
    from fairlearn.metrics import MetricFrame  # heavy import: only where the figures are made

    frames = {}
    for name in classes:
        truth = (y == name).to_numpy().astype(int)
        guess = (predicted == name).to_numpy().astype(int)
        frames[name] = MetricFrame(metrics=METRICS, y_true=truth, y_pred=guess,
                                   sensitive_features=groups.to_numpy())
    return frames


def _counts(y: np.ndarray, predicted: np.ndarray, groups: np.ndarray, n_classes: int,
            n_groups: int) -> dict[str, np.ndarray]:
    """Per group (rows) and class (columns): rows of the class, and rows predicted as it."""
    cells = n_groups * n_classes
    positives = np.bincount(groups * n_classes + y, minlength=cells).reshape(n_groups, -1)
    predicted_as = np.bincount(groups * n_classes + predicted,
                               minlength=cells).reshape(n_groups, -1)
    hits = groups[y == predicted] * n_classes + y[y == predicted]
    true_pos = np.bincount(hits, minlength=cells).reshape(n_groups, -1)
    size = np.bincount(groups, minlength=n_groups)[:, None]
    return {"positives": positives, "negatives": size - positives,
            "tpr": np.divide(true_pos, positives, out=np.full(positives.shape, np.nan),
                             where=positives > 0),
            "fpr": np.divide(predicted_as - true_pos, size - positives,
                             out=np.full(positives.shape, np.nan), where=size - positives > 0),
            "selection": predicted_as / size}


def _spread(rates: np.ndarray) -> np.ndarray:
    """Per class (column), largest minus smallest group value; NaN with under two values."""
    defined = np.isfinite(rates).sum(axis=0) >= 2
    out = np.full(rates.shape[1], np.nan)
    out[defined] = (np.nanmax(rates[:, defined], axis=0)
                    - np.nanmin(rates[:, defined], axis=0))
    return out


def _worst(values: np.ndarray) -> float:
    return float(np.nanmax(values)) if np.isfinite(values).any() else math.nan


def _differences(tpr: np.ndarray, fpr: np.ndarray, selection: np.ndarray,
                 positives: np.ndarray, negatives: np.ndarray, min_class_rows: int,
                 judged: np.ndarray | None = None) -> dict[str, Any]:
    """The three figures of groups x classes rate matrices. A rate resting on fewer than
    `min_class_rows` rows (a rare class in a small group) is left out: it is noise.

    `judged` fixes the classes of the recall gap's macro recall (the permutation test passes
    the observed ones: a null figure averaged over more classes than the observed one is
    smaller by construction, which made chance gaps look significant)."""
    raw_tpr = tpr
    tpr = np.where(positives >= min_class_rows, tpr, np.nan)
    fpr = np.where(negatives >= min_class_rows, fpr, np.nan)
    if judged is None:
        judged = np.isfinite(tpr).all(axis=0)  # classes whose recall every group measures
        macro_of = tpr
    else:
        macro_of = raw_tpr
    macro = (np.mean(macro_of[:, judged], axis=1) if judged.any()
             else np.full(len(tpr), np.nan))
    odds = np.fmax(_spread(tpr), _spread(fpr))
    return {"recall_gap": _worst(_spread(macro[:, None])), "odds_by_class": odds,
            "parity_by_class": _spread(selection), "equalized_odds_difference": _worst(odds),
            "demographic_parity_difference": _worst(_spread(selection)), "judged": judged,
            "macro_recall": macro}


BLOCKING_FIGURES = ("recall_gap", "equalized_odds_difference", "demographic_parity_difference")


def _p_values(y: np.ndarray, predicted: np.ndarray, groups: np.ndarray, n_classes: int,
              n_groups: int, observed: dict[str, Any], min_class_rows: int,
              permutations: int, seed: int) -> dict[str, float | None]:
    """Permutation test of each figure: how often shuffling the group labels over the same
    rows gives a figure at least as large. A large gap on few rows is often chance; the gate
    blocks only on a gap that is both beyond its threshold and unlikely by chance."""
    rng = np.random.default_rng(seed)
    at_least = dict.fromkeys(BLOCKING_FIGURES, 0)
    for _ in range(permutations):
        c = _counts(y, predicted, rng.permutation(groups), n_classes, n_groups)
        null = _differences(c["tpr"], c["fpr"], c["selection"], c["positives"],
                            c["negatives"], min_class_rows, judged=observed["judged"])
        for figure in BLOCKING_FIGURES:
            if null[figure] >= observed[figure] - 1e-12:
                at_least[figure] += 1
    return {figure: (None if math.isnan(observed[figure])
                     else round((1 + at_least[figure]) / (1 + permutations), 4))
            for figure in BLOCKING_FIGURES}


def column_fairness(y: pd.Series, predicted: pd.Series, groups: pd.Series,
                    classes: Sequence[str], min_group_rows: int = MIN_GROUP_ROWS,
                    min_class_rows: int = MIN_CLASS_ROWS, permutations: int = PERMUTATIONS,
                    seed: int = 0) -> dict[str, Any] | None:
    """The per-group table, the three differences and their permutation p-values of one
    sensitive column, or None when fewer than two groups have `min_group_rows` rows."""
    groups = groups.astype(str)
    sizes = groups.value_counts()
    kept = sorted(str(g) for g in sizes.index if sizes[g] >= min_group_rows)
    if len(kept) < 2:
        return None
    mask = groups.isin(kept).to_numpy()
    y, predicted, groups = (s[mask].reset_index(drop=True) for s in (y, predicted, groups))
    frames = _per_class(y, predicted, groups, classes)
    rates = {m: np.array([[frames[c].by_group.loc[g, m] for c in classes] for g in kept],
                         dtype=float)
             for m in ("recall", "false_positive_rate", "selection_rate")}
    codes = {name: i for i, name in enumerate(classes)}
    y_codes = y.map(codes).fillna(-1).to_numpy(dtype=int)
    p_codes = predicted.map(codes).fillna(-1).to_numpy(dtype=int)
    known = (y_codes >= 0) & (p_codes >= 0)
    y_codes, p_codes = y_codes[known], p_codes[known]
    g_codes = groups[known].map({g: i for i, g in enumerate(kept)}).to_numpy(dtype=int)
    counts = _counts(y_codes, p_codes, g_codes, len(classes), len(kept))
    observed = _differences(rates["recall"], rates["false_positive_rate"],
                            rates["selection_rate"], counts["positives"], counts["negatives"],
                            min_class_rows)
    by_group = {group: {
        "rows": int(sizes[group]),
        "recall": _plain(observed["macro_recall"][i]),
        "per_class": {c: {m: _plain(frames[c].by_group.loc[group, m])
                          for m in ("recall", "precision", "selection_rate")}
                      for c in classes}} for i, group in enumerate(kept)}
    return {
        "groups": by_group,
        "recall_by_group": {g: v["recall"] for g, v in by_group.items()},
        "skipped_groups": sorted(str(g) for g in sizes.index if sizes[g] < min_group_rows),
        "classes_in_recall_gap": [c for c, ok in zip(classes, observed["judged"], strict=True)
                                  if ok],
        **{figure: _plain(observed[figure]) for figure in BLOCKING_FIGURES},
        "equalized_odds_by_class": {c: _plain(v) for c, v in
                                    zip(classes, observed["odds_by_class"], strict=True)},
        "demographic_parity_by_class": {c: _plain(v) for c, v in
                                        zip(classes, observed["parity_by_class"], strict=True)},
        "p_values": _p_values(y_codes, p_codes, g_codes, len(classes), len(kept), observed,
                              min_class_rows, permutations, seed),
        "permutations": permutations,
    }


def group_fairness(x: pd.DataFrame, y: Any, predicted: Any, columns: Sequence[str],
                   classes: Sequence[str], min_group_rows: int = MIN_GROUP_ROWS,
                   min_class_rows: int = MIN_CLASS_ROWS, permutations: int = PERMUTATIONS,
                   seed: int = 0) -> dict[str, dict[str, Any]]:
    """`column_fairness` of each sensitive column present in `x` that has two groups to
    compare; a column with fewer is absent from the result."""
    y = pd.Series(np.asarray(y, dtype=object)).astype(str)
    predicted = pd.Series(np.asarray(predicted, dtype=object)).astype(str)
    out = {}
    for column in columns:
        if column not in x:
            continue
        figures = column_fairness(y, predicted, x[column].reset_index(drop=True),
                                  [str(c) for c in classes], min_group_rows, min_class_rows,
                                  permutations, seed)
        if figures is not None:
            out[column] = figures
    return out


def fairness_rows(figures: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The per-group table, one row per (column, group, class), for a report."""
    rows = []
    for column, column_figures in figures.items():
        for group, values in column_figures["groups"].items():
            for name, per_class in values["per_class"].items():
                rows.append({"column": column, "group": group, "rows": values["rows"],
                             "class": name, **per_class})
    return rows
