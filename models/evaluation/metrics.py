"""Evaluation of a classifier's predicted probabilities: metrics, review, costs and plots.

Everything here works on plain inputs (the true class names, a probability matrix whose
columns follow the spec's `classes`, and optionally the spec's `cost_matrix` and
`confidence_threshold`), so the same code scores a candidate at training time, the champion
on a new batch and a model in a notebook. Metrics come from scikit-learn; this module only
adds what it lacks (specificity, calibration error, cost and review metrics) and makes the
result JSON-serialisable, with every number a plain float or int and NaN replaced by None,
so it can be stored in the warehouse as is.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from models.evaluation.review import answered, below_threshold
from warehouse.errors import OvernightError

DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(20))
PLOT_NAMES: tuple[str, ...] = (
    "confusion_matrix",
    "roc_curves",
    "precision_recall_curves",
    "reliability_diagram",
)


class EvaluationError(OvernightError, ValueError):
    """Inputs that cannot be evaluated together (shapes, unknown labels, a bad cost matrix)."""


# --------------------------------------------------------------------------- helpers


def to_json(value: Any) -> Any:
    """`value` with numpy types turned into Python ones and NaN/inf into None."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_json(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.str_):
        return str(value)
    return value


def _check_proba(proba: Any, classes: Sequence[str]) -> np.ndarray:
    """`proba` as a float (n, k) array with one column per class."""
    array = np.asarray(proba, dtype=float)
    if array.ndim != 2:
        raise EvaluationError(f"proba must be a 2-d array (rows x classes), got {array.ndim}-d")
    if array.shape[1] != len(classes):
        raise EvaluationError(
            f"proba has {array.shape[1]} columns but there are {len(classes)} classes"
        )
    if len(set(classes)) != len(classes):
        raise EvaluationError("class names must be unique")
    if not np.all(np.isfinite(array)):
        raise EvaluationError("proba contains NaN or infinite values")
    return array


def _check_inputs(
    y_true: Any, proba: Any, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Validated (true names, true indices, proba) and the classes as a list."""
    class_list = [str(c) for c in classes]
    array = _check_proba(proba, class_list)
    names = np.asarray([str(v) for v in np.asarray(y_true, dtype=object).ravel()], dtype=object)
    if len(names) != array.shape[0]:
        raise EvaluationError(f"y_true has {len(names)} rows but proba has {array.shape[0]}")
    if len(names) == 0:
        raise EvaluationError("nothing to evaluate: y_true is empty")
    unknown = sorted(set(names) - set(class_list))
    if unknown:
        raise EvaluationError(f"y_true holds labels that are not classes: {', '.join(unknown)}")
    position = {name: i for i, name in enumerate(class_list)}
    indices = np.fromiter((position[v] for v in names), dtype=int, count=len(names))
    return names, indices, array, class_list


def _check_cost_matrix(cost_matrix: Any, k: int) -> np.ndarray:
    costs = np.asarray(cost_matrix, dtype=float)
    if costs.shape != (k, k):
        raise EvaluationError(
            f"cost_matrix must be {k} x {k} (one row per true class), got shape {costs.shape}"
        )
    return costs


def _top(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted index (argmax, first class on ties) and its probability, per row."""
    index = np.argmax(proba, axis=1)
    return index, proba[np.arange(len(proba)), index]


def _roc_auc(true_idx: np.ndarray, proba: np.ndarray, k: int, multi_class: str) -> float | None:
    """Macro ROC AUC, or None when a class is absent from y_true (it is then undefined)."""
    if len(np.unique(true_idx)) < k:
        return None
    if k == 2:
        return float(roc_auc_score(true_idx == 1, proba[:, 1]))
    return float(
        roc_auc_score(
            true_idx, proba, multi_class=multi_class, average="macro", labels=list(range(k))
        )
    )


def calibration_bins(
    correct: Any, confidence: Any, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins over [0, 1] of the top-class confidence.

    Returns (count, accuracy, mean confidence) per bin, accuracy and confidence NaN in empty
    bins. Bin i holds confidences in (i/n_bins, (i+1)/n_bins]; exactly 0 goes in the first.
    """
    if n_bins < 1:
        raise EvaluationError(f"n_bins must be at least 1, got {n_bins}")
    hits = np.asarray(correct, dtype=float)
    conf = np.asarray(confidence, dtype=float)
    which = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(which, weights=hits, minlength=n_bins) / count
        mean_conf = np.bincount(which, weights=conf, minlength=n_bins) / count
    return count, accuracy, mean_conf


def expected_calibration_error(correct: Any, confidence: Any, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width bins."""
    count, accuracy, mean_conf = calibration_bins(correct, confidence, n_bins)
    filled = count > 0
    if not filled.any():
        return 0.0
    gaps = np.abs(accuracy[filled] - mean_conf[filled])
    return float(np.sum(count[filled] * gaps) / count.sum())


# --------------------------------------------------------------------------- metrics


def evaluate(
    y_true: Any,
    proba: Any,
    classes: Sequence[str],
    *,
    cost_matrix: Any = None,
    confidence_threshold: float | None = None,
    n_bins: int = 10,
    y_pred: Any = None,
) -> dict[str, Any]:
    """All metrics of predicted probabilities against the true class names, as a JSON dict.

    The predicted class is the argmax of each row, unless `y_pred` gives the class names a
    model's own decision rule chose (a cost-sensitive decision is not an argmax).
    `cost_matrix[true][predicted]` (class order) adds cost metrics; `confidence_threshold`
    adds the review share and the accuracy on the rows confident enough not to need review.
    """
    _, true_idx, array, class_list = _check_inputs(y_true, proba, classes)
    if np.any(array < 0) or not np.allclose(array.sum(axis=1), 1.0, rtol=0, atol=1e-6):
        raise EvaluationError("every row of proba must be probabilities that sum to 1")
    k = len(class_list)
    labels = list(range(k))
    pred_idx, confidence = _top(array)
    if y_pred is not None:
        pred_idx = _check_inputs(y_pred, array, classes)[1]
    correct = pred_idx == true_idx
    n = len(true_idx)

    with warnings.catch_warnings():
        # Classes predicted but absent from y_true: sklearn warns and leaves them out.
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(true_idx, pred_idx)
    per_p, per_r, per_f, support = precision_recall_fscore_support(
        true_idx, pred_idx, labels=labels, zero_division=0
    )
    macro = precision_recall_fscore_support(
        true_idx, pred_idx, labels=labels, average="macro", zero_division=0
    )
    weighted = precision_recall_fscore_support(
        true_idx, pred_idx, labels=labels, average="weighted", zero_division=0
    )
    matrix = confusion_matrix(true_idx, pred_idx, labels=labels)

    per_class: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(class_list):
        false_pos = int(matrix[:, i].sum() - matrix[i, i])
        negatives = n - int(matrix[i, :].sum())  # TN + FP
        per_class[name] = {
            "precision": per_p[i],
            "recall": per_r[i],
            "f1": per_f[i],
            "support": int(support[i]),
            "sensitivity": per_r[i],
            "specificity": (negatives - false_pos) / negatives if negatives else None,
        }

    # log_loss takes columns in sorted label order: the class indices 0..k-1 are, whereas the
    # class names need not be (("yes", "no") would silently swap the columns).
    onehot = np.eye(k)[true_idx]
    result: dict[str, Any] = {
        "n": n,
        "classes": class_list,
        "accuracy": accuracy_score(true_idx, pred_idx),
        "balanced_accuracy": balanced,
        "precision_macro": macro[0],
        "recall_macro": macro[1],
        "f1_macro": macro[2],
        "precision_weighted": weighted[0],
        "recall_weighted": weighted[1],
        "f1_weighted": weighted[2],
        "per_class": per_class,
        "roc_auc_ovr": _roc_auc(true_idx, array, k, "ovr"),
        "roc_auc_ovo": _roc_auc(true_idx, array, k, "ovo"),
        "log_loss": log_loss(true_idx, array, labels=labels),
        "brier_score": float(np.mean(np.sum((array - onehot) ** 2, axis=1))),
        "confusion_matrix": matrix,
        "calibration_error": expected_calibration_error(correct, confidence, n_bins),
    }

    if cost_matrix is not None:
        result.update(_cost_metrics(true_idx, pred_idx, _check_cost_matrix(cost_matrix, k)))

    if confidence_threshold is not None:
        confident = answered(confidence, confidence_threshold)
        result["review_share"] = float(1.0 - confident.mean())
        result["accuracy_when_confident"] = (
            float(correct[confident].mean()) if confident.any() else None
        )

    return to_json(result)


def _cost_metrics(
    true_idx: np.ndarray, pred_idx: np.ndarray, costs: np.ndarray
) -> dict[str, float | None]:
    """Total and mean cost, cost-sensitive accuracy and profit over the majority baseline."""
    total = float(costs[true_idx, pred_idx].sum())
    worst = float(costs[true_idx].max(axis=1).sum())
    majority = int(np.argmax(np.bincount(true_idx, minlength=costs.shape[0])))
    baseline = float(costs[true_idx, majority].sum())
    return {
        "total_cost": total,
        "mean_cost": total / len(true_idx),
        "cost_sensitive_accuracy": 1.0 - total / worst if worst else None,
        "profit_score": (baseline - total) / baseline if baseline else None,
    }


# --------------------------------------------------------------------------- decisions


def predict_with_review(proba: Any, classes: Sequence[str], threshold: float) -> pd.DataFrame:
    """The argmax prediction of each row, its confidence and whether it needs human review.

    A row needs review when its top probability is below `threshold`.
    """
    class_list = [str(c) for c in classes]
    array = _check_proba(proba, class_list)
    index, confidence = _top(array)
    return pd.DataFrame(
        {
            "predicted_class": pd.Series([class_list[i] for i in index], dtype=object),
            "predicted_index": index.astype(int),
            "confidence": confidence.astype(float),
            "needs_review": below_threshold(confidence, threshold),
        }
    )


def coverage_curve(
    y_true: Any,
    proba: Any,
    classes: Sequence[str],
    thresholds: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """Coverage and accuracy of confidence-based review for each threshold.

    Coverage is the share of rows whose top probability is at least the threshold (the rows
    answered automatically); accuracy is measured on those rows (None when there are none).
    Thresholds default to 0.0, 0.05, ..., 0.95.
    """
    _, true_idx, array, _ = _check_inputs(y_true, proba, classes)
    pred_idx, confidence = _top(array)
    correct = pred_idx == true_idx
    points: list[dict[str, Any]] = []
    for threshold in DEFAULT_THRESHOLDS if thresholds is None else thresholds:
        covered = answered(confidence, threshold)
        count = int(covered.sum())
        points.append(
            {
                "threshold": float(threshold),
                "coverage": count / len(confidence),
                "n_covered": count,
                "accuracy": float(correct[covered].mean()) if count else None,
            }
        )
    return to_json(points)


def cost_sensitive_predict(proba: Any, cost_matrix: Any) -> np.ndarray:
    """Per row, the predicted index with the lowest expected cost.

    Expected cost of predicting j is sum_i proba[:, i] * cost[i][j], with `cost_matrix`
    indexed [true][predicted]; ties go to the lower index.
    """
    array = np.asarray(proba, dtype=float)
    if array.ndim != 2:
        raise EvaluationError(f"proba must be a 2-d array (rows x classes), got {array.ndim}-d")
    costs = _check_cost_matrix(cost_matrix, array.shape[1])
    return np.argmin(array @ costs, axis=1).astype(int)


# --------------------------------------------------------------------------- plots


def save_plots(
    y_true: Any,
    proba: Any,
    classes: Sequence[str],
    out_dir: str | Path,
    prefix: str = "",
) -> dict[str, str]:
    """Write the confusion matrix, ROC, precision-recall and reliability plots as PNG files.

    Returns {plot name: file path}. Needs matplotlib (raises ImportError saying so if absent).
    ROC and precision-recall curves are one-vs-rest, one line per class present in y_true.
    """
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "save_plots needs matplotlib, which is not installed in this environment; "
            "install matplotlib to write evaluation plots"
        ) from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import (
        ConfusionMatrixDisplay,
        auc,
        average_precision_score,
        precision_recall_curve,
        roc_curve,
    )

    names, true_idx, array, class_list = _check_inputs(y_true, proba, classes)
    pred_idx, confidence = _top(array)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: str(directory / f"{prefix}{name}.png") for name in PLOT_NAMES}
    present = [i for i in range(len(class_list)) if (true_idx == i).any()]
    one_vs_rest = present if len(present) > 1 else []

    # Confusion matrix.
    fig, ax = plt.subplots(figsize=(1.2 * len(class_list) + 3, 1.2 * len(class_list) + 2.5))
    try:
        ConfusionMatrixDisplay.from_predictions(
            list(names),
            [class_list[i] for i in pred_idx],
            labels=class_list,
            ax=ax,
            colorbar=False,
            xticks_rotation=45,
        )
        ax.set_title("Confusion matrix (rows: true, columns: predicted)")
        fig.tight_layout()
        fig.savefig(paths["confusion_matrix"], dpi=100)
    finally:
        plt.close(fig)

    # ROC curves, one-vs-rest.
    fig, ax = plt.subplots(figsize=(6, 5))
    try:
        for i in one_vs_rest:
            fpr, tpr, _ = roc_curve(true_idx == i, array[:, i])
            ax.plot(fpr, tpr, label=f"{class_list[i]} (AUC {auc(fpr, tpr):.3f})")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
        ax.set(xlabel="False positive rate", ylabel="True positive rate",
               title="ROC curves (one-vs-rest)", xlim=(0, 1), ylim=(0, 1.02))
        if one_vs_rest:
            ax.legend(loc="lower right", fontsize="small")
        fig.tight_layout()
        fig.savefig(paths["roc_curves"], dpi=100)
    finally:
        plt.close(fig)

    # Precision-recall curves, one-vs-rest.
    fig, ax = plt.subplots(figsize=(6, 5))
    try:
        for i in one_vs_rest:
            precision, recall, _ = precision_recall_curve(true_idx == i, array[:, i])
            ap = average_precision_score(true_idx == i, array[:, i])
            ax.step(recall, precision, where="post", label=f"{class_list[i]} (AP {ap:.3f})")
        ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curves (one-vs-rest)",
               xlim=(0, 1), ylim=(0, 1.02))
        if one_vs_rest:
            ax.legend(loc="lower left", fontsize="small")
        fig.tight_layout()
        fig.savefig(paths["precision_recall_curves"], dpi=100)
    finally:
        plt.close(fig)

    # Reliability diagram of the top-class confidence.
    correct = pred_idx == true_idx
    count, accuracy, mean_conf = calibration_bins(correct, confidence, 10)
    filled = count > 0
    centres = (np.arange(10) + 0.5) / 10
    ece = expected_calibration_error(correct, confidence, 10)
    fig, ax = plt.subplots(figsize=(6, 5))
    try:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
        ax.bar(centres[filled], accuracy[filled], width=0.1, edgecolor="black", alpha=0.7,
               label="accuracy in bin")
        ax.plot(mean_conf[filled], accuracy[filled], marker="o", color="black",
                label="mean confidence vs accuracy")
        ax.set(xlabel="Top-class confidence", ylabel="Accuracy",
               title=f"Reliability diagram (ECE {ece:.3f})", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(loc="upper left", fontsize="small")
        fig.tight_layout()
        fig.savefig(paths["reliability_diagram"], dpi=100)
    finally:
        plt.close(fig)

    return paths
