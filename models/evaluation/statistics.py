"""Model comparison statistics: is the challenger really better, and which candidate to keep?

Nightly retraining produces several candidate models and a champion to beat. A difference in
mean cross-validation score is not enough to promote a model, so this module gives the tests
that say whether a difference is real, and a transparent multi-criteria ranking:

- `cv_summary`: mean, spread and a 95 % t-interval of one model's CV scores;
- `corrected_resampled_ttest`: Nadeau & Bengio's corrected resampled t-test on paired CV scores
  (the plain paired t-test is far too optimistic because CV training sets overlap);
- `paired_5x2cv_ttest`: Dietterich's 5x2cv paired t-test, refitting both estimators itself;
- `mcnemar_test`: McNemar's test on the predictions of two models on one shared test set
  (`mcnemar_counts` from the discordant counts alone);
- `holm_significant`: which of a family of tests stay significant under Holm's step-down
  control of the family-wise error (scipy has only the false-discovery-rate controls);
- `rank_candidates`: a weighted ranking over performance, robustness, speed, interpretability
  and memory, each min-max normalised across the candidates.

Every result is made of plain Python values (float, int, bool, str, None, dict), so it can be
stored or logged as JSON as it is. A test statistic can be +/-inf when the differences are
constant and non-zero (zero variance): `json.dumps` writes it as `Infinity`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from scipy import stats
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils.multiclass import type_of_target

DEFAULT_WEIGHTS: dict[str, float] = {
    "performance": 0.40,
    "robustness": 0.20,
    "speed": 0.15,
    "interpretability": 0.15,
    "memory": 0.10,
}

# How readable a fitted model of each family is, 0 (opaque) .. 1 (transparent).
INTERPRETABILITY: dict[str, float] = {
    "logistic_regression": 0.9,
    "dummy": 1.0,
    "random_forest": 0.5,
    "gradient_boosting": 0.4,
    "svm": 0.3,
    "knn": 0.4,
    "naive_bayes": 0.8,
    "linear_svm": 0.8,
    "sgd": 0.8,
}


# --------------------------------------------------------------------------- helpers


def _as_finite_array(values: Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite numbers")
    return arr


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return alpha


def _t_test_result(
    mean_diff: float, numerator: float, variance: float, df: int, alpha: float
) -> dict[str, Any]:
    """Two-sided t-test result for numerator / sqrt(variance), with the zero-variance cases."""
    if variance > 0.0:
        statistic = numerator / math.sqrt(variance)
        p_value = float(2.0 * stats.t.sf(abs(statistic), df))
    elif numerator == 0.0:
        statistic, p_value = 0.0, 1.0
    else:  # constant, non-zero differences: as strong as evidence gets
        statistic, p_value = math.copysign(math.inf, numerator), 0.0
    return {
        "statistic": float(statistic),
        "p_value": min(max(p_value, 0.0), 1.0),
        "mean_difference": float(mean_diff),
        "significant": bool(p_value < alpha),
        "alpha": alpha,
    }


def _take(data: Any, index: np.ndarray) -> Any:
    """Rows `index` of a pandas object (positional) or an array-like."""
    if hasattr(data, "iloc"):
        return data.iloc[index]
    return np.asarray(data)[index]


# --------------------------------------------------------------------------- summaries


def cv_summary(scores: Sequence[float]) -> dict[str, Any]:
    """Mean, std (ddof=1), min, max, n and a 95 % t-interval of cross-validation scores.

    With a single score the std is 0.0 and the interval collapses to the score itself.
    """
    arr = _as_finite_array(scores, "scores")
    n = int(arr.size)
    if n == 0:
        raise ValueError("cv_summary needs at least one score")
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n > 1 else 0.0
    half_width = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else 0.0
    return {
        "mean": mean,
        "std": std,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "n": n,
        "ci_low": mean - half_width,
        "ci_high": mean + half_width,
    }


# --------------------------------------------------------------------------- paired tests


def corrected_resampled_ttest(
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    n_train: int,
    n_test: int,
    *,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Nadeau & Bengio's corrected resampled t-test on paired scores of two models.

    `scores_a[i]` and `scores_b[i]` come from the same fold / repeat i (k pairs in all);
    `n_train` and `n_test` are the sizes of one fold's training and test sets. The variance of
    the differences is inflated by (1/k + n_test/n_train) instead of 1/k, which accounts for the
    overlap between training sets. Two-sided p-value with k - 1 degrees of freedom.
    """
    a = _as_finite_array(scores_a, "scores_a")
    b = _as_finite_array(scores_b, "scores_b")
    if a.size != b.size:
        raise ValueError(f"scores_a and scores_b differ in length ({a.size} != {b.size})")
    k = int(a.size)
    if k < 2:
        raise ValueError("the corrected resampled t-test needs at least two paired scores")
    if n_train <= 0 or n_test <= 0:
        raise ValueError("n_train and n_test must be positive")
    alpha = _check_alpha(alpha)
    d = a - b
    mean_d = float(d.mean())
    variance = float((1.0 / k + n_test / n_train) * d.var(ddof=1))
    return _t_test_result(mean_d, mean_d, variance, k - 1, alpha)


def paired_5x2cv_ttest(
    estimator_a: Any,
    estimator_b: Any,
    X: Any,
    y: Any,
    random_state: int = 0,
    scoring: str | None = None,
    *,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Dietterich's 5x2cv paired t-test: refits clones of both estimators on 5 x 2 folds.

    Each of 5 repetitions splits the data in two halves (stratified for class targets, with
    seed `random_state + i`); p_i^(j) is the score difference a - b on fold j of repetition i
    and s_i^2 the variance of the two differences of repetition i. t = p_1^(1) / sqrt(mean s_i^2)
    with 5 degrees of freedom, two-sided. `scoring` None uses `estimator.score` (accuracy for
    classifiers); otherwise it is a scorer name for `sklearn.metrics.get_scorer`.
    `mean_difference` is the mean of the ten differences. X may be a DataFrame or an array.
    """
    alpha = _check_alpha(alpha)
    scorer = get_scorer(scoring) if scoring is not None else None
    y_arr = np.asarray(y)
    n = len(y_arr)
    if n < 4:
        raise ValueError("the 5x2cv test needs at least four samples")
    stratify = type_of_target(y_arr) in ("binary", "multiclass")

    def score(estimator: Any, train: np.ndarray, test: np.ndarray) -> float:
        fitted = clone(estimator).fit(_take(X, train), _take(y, train))
        X_test, y_test = _take(X, test), _take(y, test)
        if scorer is None:
            return float(fitted.score(X_test, y_test))
        return float(scorer(fitted, X_test, y_test))

    differences: list[list[float]] = []
    for i in range(5):
        seed = random_state + i
        splitter = (
            StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
            if stratify
            else KFold(n_splits=2, shuffle=True, random_state=seed)
        )
        differences.append(
            [
                score(estimator_a, train, test) - score(estimator_b, train, test)
                for train, test in splitter.split(np.zeros((n, 1)), y_arr)
            ]
        )
    diffs = np.asarray(differences)  # shape (5, 2)
    rep_means = diffs.mean(axis=1, keepdims=True)
    variances = ((diffs - rep_means) ** 2).sum(axis=1)  # s_i^2
    p11 = float(diffs[0, 0])
    return _t_test_result(float(diffs.mean()), p11, float(variances.mean()), 5, alpha)


def mcnemar_test(
    y_true: Sequence[Any],
    pred_a: Sequence[Any],
    pred_b: Sequence[Any],
    *,
    exact: bool | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """McNemar's test for two models' predictions on one shared test set.

    b counts samples model a gets right and model b wrong, c the reverse. The exact two-sided
    binomial test is used when b + c < 25 (or `exact=True`), otherwise the chi-square test with
    continuity correction, (max(|b - c| - 1, 0))^2 / (b + c), with 1 degree of freedom
    (`exact=False` forces it). `statistic` is min(b, c) for the exact test. `better` names the
    model that is significantly better ("a" or "b"), None when the difference is not significant.
    """
    alpha = _check_alpha(alpha)
    truth, a, b_pred = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    if not truth.shape == a.shape == b_pred.shape:
        raise ValueError("y_true, pred_a and pred_b must have the same length")
    a_right, b_right = a == truth, b_pred == truth
    return mcnemar_counts(int(np.sum(a_right & ~b_right)), int(np.sum(~a_right & b_right)),
                          exact=exact, alpha=alpha)


def mcnemar_counts(b: int, c: int, *, exact: bool | None = None, alpha: float = 0.05
                   ) -> dict[str, Any]:
    """McNemar's test from the discordant counts alone (b: a right and b wrong; c: the
    reverse), for callers that hold counts rather than predictions (the A/B verdicts of
    served traffic, `monitoring.ab_verdict`). Same rules and result as `mcnemar_test`."""
    alpha = _check_alpha(alpha)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n_discordant = b + c
    use_exact = n_discordant < 25 if exact is None else bool(exact)
    if n_discordant == 0:
        statistic, p_value = 0.0, 1.0
    elif use_exact:
        statistic = float(min(b, c))
        p_value = float(stats.binomtest(min(b, c), n_discordant, 0.5).pvalue)
    else:
        statistic = max(abs(b - c) - 1.0, 0.0) ** 2 / n_discordant
        p_value = float(stats.chi2.sf(statistic, 1))
    p_value = min(max(p_value, 0.0), 1.0)
    significant = bool(p_value < alpha)
    better = ("a" if b > c else "b") if significant and b != c else None
    return {
        "b": b,
        "c": c,
        "statistic": float(statistic),
        "p_value": p_value,
        "significant": significant,
        "better": better,
        "method": "exact" if use_exact else "chi2",
        "alpha": alpha,
    }


# --------------------------------------------------------------------------- ranking

_REQUIRED_KEYS = ("name", "performance", "cv_std", "fit_seconds", "predict_seconds")


Test = TypeVar("Test", bound=Hashable)


def holm_significant(p_values: Mapping[Test, float | None], alpha: float) -> set[Test]:
    """The tests of a family that are significant with a family-wise error of at most
    `alpha` (Holm 1979): sorted by p-value, the k-th smallest (from 0) must be below
    alpha / (m - k), and the first that is not stops the walk. A None p-value (nothing to
    test) is not a member of the family."""
    _check_alpha(alpha)
    family = sorted((p, key) for key, p in p_values.items() if p is not None)
    significant: set[Test] = set()
    for k, (p_value, key) in enumerate(family):
        if p_value >= alpha / (len(family) - k):
            break
        significant.add(key)
    return significant


def _normalise_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        weights = DEFAULT_WEIGHTS
    unknown = sorted(set(weights) - set(DEFAULT_WEIGHTS))
    if unknown:
        raise ValueError(
            f"unknown weight name(s): {', '.join(unknown)}; known: {', '.join(DEFAULT_WEIGHTS)}"
        )
    values = {key: float(weights.get(key, 0.0)) for key in DEFAULT_WEIGHTS}
    bad = sorted(key for key, value in values.items() if not math.isfinite(value) or value < 0)
    if bad:
        raise ValueError(f"weights must be finite and non-negative: {', '.join(bad)}")
    total = sum(values.values())
    if total <= 0.0:
        raise ValueError("at least one weight must be positive")
    return {key: value / total for key, value in values.items()}


def _optional_number(candidate: Mapping[str, Any], key: str) -> float | None:
    value = candidate.get(key)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _min_max(values: list[float | None], higher_is_better: bool) -> list[float]:
    """Min-max normalise to 0..1 with 1 = best; all equal -> 1.0; missing (None) -> 0.0."""
    present = [v for v in values if v is not None]
    if not present:
        return [0.0 for _ in values]
    low, high = min(present), max(present)
    span = high - low
    out = []
    for v in values:
        if v is None:
            out.append(0.0)
        elif span == 0.0:
            out.append(1.0)
        else:
            out.append((v - low) / span if higher_is_better else (high - v) / span)
    return [float(x) for x in out]


def rank_candidates(
    candidates: list[dict[str, Any]], weights: Mapping[str, float] | None = None
) -> list[dict[str, Any]]:
    """Rank candidate models by a weighted sum of min-max normalised criteria (1 = best).

    Each candidate needs `name`, `performance` (higher is better), `cv_std` (robustness, lower
    is better), `fit_seconds` and `predict_seconds` (speed from their sum, lower is better);
    `interpretability` (0..1, higher is better) and `memory_mb` (lower is better) are optional
    and a candidate without them gets 0.0, the worst normalised value. Weights default to
    `DEFAULT_WEIGHTS`, missing names weigh 0, and they are normalised to sum to 1. Returns new
    dicts with `criteria`, `score` and `rank` added, sorted by rank; ties are broken by higher
    performance, then by name.
    """
    norm_weights = _normalise_weights(weights)
    if not candidates:
        return []
    names: list[str] = []
    raw: dict[str, list[float | None]] = {key: [] for key in DEFAULT_WEIGHTS}
    for position, candidate in enumerate(candidates):
        missing = [key for key in _REQUIRED_KEYS if candidate.get(key) is None]
        if missing:
            raise ValueError(f"candidate {position} lacks required key(s): {', '.join(missing)}")
        name = str(candidate["name"])
        required = {key: float(candidate[key]) for key in _REQUIRED_KEYS[1:]}
        bad = sorted(key for key, value in required.items() if not math.isfinite(value))
        if bad:
            raise ValueError(f"candidate {name!r} has non-finite value(s): {', '.join(bad)}")
        names.append(name)
        raw["performance"].append(required["performance"])
        raw["robustness"].append(required["cv_std"])
        raw["speed"].append(required["fit_seconds"] + required["predict_seconds"])
        raw["interpretability"].append(_optional_number(candidate, "interpretability"))
        raw["memory"].append(_optional_number(candidate, "memory_mb"))
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate candidate name(s): {', '.join(duplicates)}")

    higher_is_better = {"performance": True, "interpretability": True}
    normalised = {
        key: _min_max(values, higher_is_better.get(key, False)) for key, values in raw.items()
    }
    ranked = []
    for i, candidate in enumerate(candidates):
        criteria = {key: normalised[key][i] for key in DEFAULT_WEIGHTS}
        score = sum(norm_weights[key] * criteria[key] for key in DEFAULT_WEIGHTS)
        # Rounded so floating-point noise in equal sums cannot reorder a tie (and 1.0 is 1.0).
        ranked.append({**candidate, "criteria": criteria, "score": round(float(score), 12)})
    ranked.sort(key=lambda c: (-c["score"], -float(c["performance"]), str(c["name"])))
    for rank, entry in enumerate(ranked, start=1):
        entry["rank"] = rank
    return ranked


# --------------------------------------------------------------------------- selection


def performance_ties(
    scores: Mapping[str, Sequence[float]],
    n_train: int,
    n_test: int,
    *,
    alpha: float = 0.05,
) -> dict[str, dict[str, Any]]:
    """Which candidates are statistically tied with the best on paired fold scores.

    `scores[name][i]` is candidate `name`'s macro F1 on fold i, the same folds for every
    candidate; `n_train` / `n_test` are one fold's sizes. The best is the highest mean
    (ties broken by name). Every other candidate is compared with it by the corrected
    resampled t-test; one whose mean is lower with p < alpha is significantly worse and out of
    the tie group, whatever its other merits. Returns, per name, `mean`, `p_value` (None for the
    best), `tied` and `best`. With fewer than two paired scores nothing can be tested: only
    candidates whose mean equals the best's are tied.
    """
    if not scores:
        return {}
    means = {name: float(np.mean(values)) for name, values in scores.items()}
    best = min(means, key=lambda name: (-means[name], name))
    out: dict[str, dict[str, Any]] = {
        best: {"mean": means[best], "p_value": None, "tied": True, "best": True}}
    for name, values in scores.items():
        if name == best:
            continue
        p_value = None
        if len(values) >= 2 and len(values) == len(scores[best]):
            test = corrected_resampled_ttest(scores[best], values, n_train, n_test, alpha=alpha)
            p_value = test["p_value"]
            worse = test["mean_difference"] > 0 and test["significant"]
        else:
            worse = means[name] < means[best]
        out[name] = {"mean": means[name], "p_value": p_value, "tied": not worse, "best": False}
    return out
