"""Reading a text model: top words per class, one article's words, common confusions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.pipeline import Pipeline

from models.data.spec import DatasetSpec
from models.learning.text.cleaner import WORD, TextError


def class_proba(model: BaseEstimator, X: Any, classes: Sequence[str]) -> np.ndarray:
    """predict_proba with columns in the order of `classes` (0 for a class never seen)."""
    proba = model.predict_proba(X)
    out = np.zeros((proba.shape[0], len(classes)))
    position = {str(c): i for i, c in enumerate(classes)}
    for j, label in enumerate(model.classes_):
        out[:, position[str(label)]] = proba[:, j]
    return out


# --------------------------------------------------------------------------- interpretability

MAX_PERTURBED_WORDS = 100
PERTURBED_CHARACTERS = 20_000_000


def _unwrap(model: BaseEstimator) -> Pipeline:
    """The preprocess/classify pipeline inside a decision-rule wrapper (if any)."""
    inner = model
    while not hasattr(inner, "named_steps"):
        if not hasattr(inner, "estimator_"):
            raise TextError(f"expected a fitted text pipeline, got {type(model).__name__}")
        inner = inner.estimator_
    return inner


def _vectoriser_of(transformer: Any) -> CountVectorizer | None:
    last = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
    return last if isinstance(last, CountVectorizer) else None


def _feature_table(preprocess: ColumnTransformer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output feature: its name without prefix, its source column, whether it is a word."""
    total = max((s.stop for s in preprocess.output_indices_.values()), default=0)
    names = np.empty(total, dtype=object)
    columns = np.empty(total, dtype=object)
    is_word = np.zeros(total, dtype=bool)
    for branch, transformer, selected in preprocess.transformers_:
        part = preprocess.output_indices_.get(branch)
        if part is None or part.stop == part.start:
            continue
        vectoriser = _vectoriser_of(transformer)
        if vectoriser is not None:
            names[part] = vectoriser.get_feature_names_out()
            columns[part] = selected[0]
            is_word[part] = vectoriser.analyzer == "word"
        else:
            names[part] = transformer.get_feature_names_out()
            columns[part] = branch
    return names, columns, is_word


def _text_columns(preprocess: ColumnTransformer) -> list[str]:
    return [selected[0] for _, transformer, selected in preprocess.transformers_
            if _vectoriser_of(transformer) is not None]


def _class_weights(classifier: BaseEstimator) -> np.ndarray | None:
    """A (classes x features) matrix whose row differences give each feature's pull.

    Coefficients for linear models (averaged over a calibrated ensemble), centred log
    probabilities for naive Bayes; None for any other model.
    """
    if isinstance(classifier, CalibratedClassifierCV):
        inner = [c.estimator for c in classifier.calibrated_classifiers_]
        if not all(hasattr(e, "coef_") for e in inner):
            return None
        weights = np.mean([e.coef_ for e in inner], axis=0)
    elif hasattr(classifier, "feature_log_prob_"):
        log_prob = classifier.feature_log_prob_
        weights = log_prob - log_prob.mean(axis=0)
    elif hasattr(classifier, "coef_"):
        weights = np.asarray(classifier.coef_)
    else:
        return None
    if weights.shape[0] == 1:  # binary: one row for the second class
        weights = np.vstack([-weights[0], weights[0]]) / 2
    return weights


def _entry(name: str, column: str, value: float, key: str) -> dict[str, Any]:
    return {"word": str(name), "column": str(column), key: float(value)}


def top_words(model: BaseEstimator, n: int = 15) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per class, the n features pulling hardest toward ("positive") and away ("negative").

    Needs a linear model or naive Bayes. Each entry: word (vectoriser feature, prefix
    stripped), column (its text column) and weight.
    """
    pipeline = _unwrap(model)
    classifier = pipeline.named_steps["classify"]
    weights = _class_weights(classifier)
    if weights is None:
        raise TextError(
            f"top_words needs a linear model or naive Bayes, got {type(classifier).__name__}; "
            "use explain_article for any model"
        )
    names, columns, _ = _feature_table(pipeline.named_steps["preprocess"])
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for label, row in zip(classifier.classes_, weights, strict=True):
        order = np.argsort(row, kind="stable")
        out[str(label)] = {
            "positive": [_entry(names[j], columns[j], row[j], "weight")
                         for j in order[::-1][:n] if row[j] > 0],
            "negative": [_entry(names[j], columns[j], row[j], "weight")
                         for j in order[:n] if row[j] < 0],
        }
    return out


def explain_article(model: BaseEstimator, row: Mapping[str, Any] | pd.DataFrame,
                    n: int = 10) -> dict[str, Any]:
    """Why one article got its class rather than the runner-up, in words it contains.

    Linear models and naive Bayes over word vectorisers ("coefficients"): each feature's
    contribution is its value in the article times (weight[predicted] - weight[runner-up]).
    Other models or character n-grams ("perturbation"): each distinct word is removed from
    every text column in turn and the drop in the predicted-minus-runner-up margin is its
    contribution, all variants in one batch (see `_perturbation`).
    """
    X = row if isinstance(row, pd.DataFrame) else pd.DataFrame([dict(row)])
    if len(X) != 1:
        raise TextError(f"explain_article explains one article, got {len(X)} rows")
    proba = model.predict_proba(X)[0]
    labels = [str(c) for c in model.classes_]
    if len(labels) < 2:
        raise TextError("explain_article needs a model that knows at least two classes")
    first, second = (labels[i] for i in np.argsort(-proba, kind="stable")[:2])
    pipeline = _unwrap(model)
    preprocess = pipeline.named_steps["preprocess"]
    classifier = pipeline.named_steps["classify"]
    weights = _class_weights(classifier)
    vectorisers = [_vectoriser_of(t) for _, t, _ in preprocess.transformers_]
    analyzers = {v.analyzer for v in vectorisers if v is not None}
    if weights is not None and analyzers == {"word"}:
        method = "coefficients"
        inner = [str(c) for c in classifier.classes_]
        pull = weights[inner.index(first)] - weights[inner.index(second)]
        names, columns, is_word = _feature_table(preprocess)
        values = sparse.csr_matrix(preprocess.transform(X))
        values.sum_duplicates()
        keep = is_word[values.indices]
        contributions = [_entry(names[j], columns[j], v * pull[j], "contribution")
                         for j, v in zip(values.indices[keep], values.data[keep], strict=True)]
    else:
        method = "perturbation"
        contributions = _perturbation(model, X, _text_columns(preprocess), first, second)
    contributions.sort(key=lambda e: e["contribution"], reverse=True)
    return {
        "predicted": first,
        "probability": float(proba[labels.index(first)]),
        "runner_up": second,
        "runner_up_probability": float(proba[labels.index(second)]),
        "method": method,
        "toward_predicted": [e for e in contributions if e["contribution"] > 0][:n],
        "toward_runner_up": [e for e in reversed(contributions) if e["contribution"] < 0][:n],
    }


def _margin(model: BaseEstimator, X: pd.DataFrame, first: str, second: str) -> np.ndarray:
    """Per row, how far the model prefers `first` over `second`.

    Decision values when the classifier has them (saturated probabilities, as from a
    modified-Huber SGD, would hide small pulls), else the difference of probabilities.
    """
    pipeline = _unwrap(model)
    classifier = pipeline.named_steps["classify"]
    if hasattr(classifier, "decision_function"):
        labels = [str(c) for c in classifier.classes_]
        scores = np.asarray(pipeline.decision_function(X), dtype=float)
        if scores.ndim == 1:  # binary: the score of the second class
            scores = np.column_stack([-scores, scores])
    else:
        labels = [str(c) for c in model.classes_]
        scores = model.predict_proba(X)
    return scores[:, labels.index(first)] - scores[:, labels.index(second)]


def _perturbation(model: BaseEstimator, X: pd.DataFrame, text_columns: list[str], first: str,
                  second: str) -> list[dict[str, Any]]:
    """Leave-one-word-out contributions to the margin of `first` over `second`.

    The most frequent distinct words are tried, at most MAX_PERTURBED_WORDS and fewer for
    long articles (PERTURBED_CHARACTERS bounds the text re-scored in the batch).
    """
    texts = {c: "" if pd.isna(X[c].iloc[0]) else str(X[c].iloc[0]) for c in text_columns}
    words_in = {c: WORD.findall(t.lower()) for c, t in texts.items()}
    found = Counter(w for words in words_in.values() for w in words)
    size = max(sum(len(t) for t in texts.values()), 1)
    limit = max(1, min(MAX_PERTURBED_WORDS, PERTURBED_CHARACTERS // size))
    words = [w for w, _ in found.most_common(limit)]
    if not words:
        return []
    batch = pd.concat([X] * (len(words) + 1), ignore_index=True)
    for column, text in texts.items():
        batch[column] = [text] + [
            re.sub(rf"(?<!\w){re.escape(w)}(?!\w)", " ", text, flags=re.IGNORECASE)
            for w in words
        ]
    margin = _margin(model, batch, first, second)
    where = {c: set(words) for c, words in words_in.items()}
    return [
        _entry(w, "+".join(c for c in texts if w in where[c]), margin[0] - m, "contribution")
        for w, m in zip(words, margin[1:], strict=True)
    ]


def common_confusions(model: BaseEstimator, frame: pd.DataFrame, spec: DatasetSpec, n: int = 5,
                      examples: int = 2) -> list[dict[str, Any]]:
    """The n most common (true, predicted) mistakes with counts and example headlines.

    Examples are the most confident mistakes of the pair; share is the pair's count over the
    true class's rows.
    """
    X = frame[spec.feature_names]
    truth = frame[spec.target].astype(str).to_numpy()
    predicted = np.asarray(model.predict(X)).astype(str)
    proba = model.predict_proba(X)
    labels = [str(c) for c in model.classes_]
    confidence = proba[np.arange(len(X)), [labels.index(p) for p in predicted]]
    wrong = truth != predicted
    pairs = Counter(zip(truth[wrong], predicted[wrong], strict=True))
    headline = frame[spec.features_of_type("text")[0]].fillna("").astype(str).to_numpy()
    out = []
    for (true, pred), count in sorted(pairs.items(), key=lambda p: (-p[1], p[0]))[:n]:
        rows = np.flatnonzero(wrong & (truth == true) & (predicted == pred))
        rows = rows[np.argsort(-confidence[rows], kind="stable")][:examples]
        out.append({
            "true": true,
            "predicted": pred,
            "count": int(count),
            "share": count / int((truth == true).sum()),
            "examples": [str(h) for h in headline[rows]],
        })
    return out
