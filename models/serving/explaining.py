"""Per-prediction explanations of a whole request: SHAP values (`explain_records`, through
`models.evaluation.shap_values`, one explainer kept per model version), and the earlier
occlusion / word-weight explanations (`explain_records_by_occlusion`), kept for comparison.

Tabular models: the occlusion explanation of `models.evaluation.explain.explain_prediction` (each
feature replaced by its reference value, the drop of the predicted class's probability),
with the variants of every record of the request stacked into ONE `predict_proba` call
instead of one call per record; the answers are the same numbers. Text models with word
weights (linear models, naive Bayes): `models.learning.text.explain_article`'s coefficient method
with
the probabilities, the vectorised articles and the vocabulary table computed once per
request instead of once per article (the table alone was most of the 130 ms per article).
Other text models keep `explain_article` per article (a perturbation batch of its own).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from models.data.spec import DatasetSpec, feature_frame
from models.evaluation.metrics import to_json
from models.learning.imbalance import CostSensitiveClassifier
from models.registry.artifacts import REFERENCE_FILE
from models.serving.store import LoadedModel

TOP_FEATURES = 5


_EXPLAINERS: dict[tuple[str, str, str], Any] = {}
_EXPLAINERS_LOCK = threading.Lock()


def shap_explainer(loaded: LoadedModel) -> Any:
    """The SHAP explainer of a loaded version (built on first use, then kept per version):
    its background is the training sample registered beside the artifact (REFERENCE_FILE),
    so `?explain=true`, `overnight predict --explain` and the board give the same numbers."""
    from models.evaluation.shap_values import ShapExplainer

    key = (loaded.dataset, loaded.model_version, loaded.sha256)
    with _EXPLAINERS_LOCK:
        explainer = _EXPLAINERS.get(key)
        if explainer is None:
            explainer = ShapExplainer(loaded.model, loaded.spec, background_of(loaded))
            if len(_EXPLAINERS) > 8:          # old versions: a promotion replaced them
                _EXPLAINERS.clear()
            _EXPLAINERS[key] = explainer
    return explainer


def background_of(loaded: LoadedModel) -> pd.DataFrame:
    """The training sample saved with the version, or (a version registered without one)
    the reference row of medians and modes."""
    path = loaded.artifact_path.parent / REFERENCE_FILE
    if path.exists():
        return pd.read_parquet(path)[loaded.spec.feature_names]
    return pd.DataFrame([loaded.reference()], columns=loaded.spec.feature_names)


def explain_records(loaded: LoadedModel, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One SHAP explanation per row of `frame` (raw features), in its order
    (`models.evaluation.shap_values`)."""
    return list(shap_explainer(loaded).explain(frame))   # builds its shap objects per call


def explain_records_by_occlusion(loaded: LoadedModel,
                                 frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The explanations before SHAP: occlusion (tabular) and word weights (text)."""
    if loaded.spec.kind == "text":
        return [json.loads(json.dumps(e, default=str))
                for e in explain_texts(loaded.model, frame[loaded.spec.feature_names])]
    return explain_tabular(loaded.model, frame, loaded.reference(), loaded.spec)


def explain_texts(model: Any, frame: pd.DataFrame, *, n: int = 10) -> list[dict[str, Any]]:
    """`explain_article` of every row, sharing what does not depend on the article."""
    from models.learning.text import explain as text

    pipeline = text._unwrap(model)
    preprocess = pipeline.named_steps["preprocess"]
    classifier = pipeline.named_steps["classify"]
    weights = text._class_weights(classifier)
    analyzers = {v.analyzer for _, t, _ in preprocess.transformers_
                 if (v := text._vectoriser_of(t)) is not None}
    labels = [str(c) for c in model.classes_]
    if weights is None or analyzers != {"word"} or len(labels) < 2 or frame.empty:
        return [text.explain_article(model, frame.iloc[[i]], n) for i in range(len(frame))]
    probabilities = np.asarray(model.predict_proba(frame), dtype=float)
    inner = [str(c) for c in classifier.classes_]
    names, columns, is_word = text._feature_table(preprocess)
    values = sparse.csr_matrix(preprocess.transform(frame))
    values.sum_duplicates()
    out = []
    for r, proba in enumerate(probabilities):
        first, second = (labels[i] for i in np.argsort(-proba, kind="stable")[:2])
        pull = weights[inner.index(first)] - weights[inner.index(second)]
        row = values[r]
        keep = is_word[row.indices]
        contributions = [text._entry(names[j], columns[j], v * pull[j], "contribution")
                         for j, v in zip(row.indices[keep], row.data[keep], strict=True)]
        contributions.sort(key=lambda e: e["contribution"], reverse=True)
        out.append({
            "predicted": first, "probability": float(proba[labels.index(first)]),
            "runner_up": second, "runner_up_probability": float(proba[labels.index(second)]),
            "method": "coefficients",
            "toward_predicted": [e for e in contributions if e["contribution"] > 0][:n],
            "toward_runner_up": [e for e in reversed(contributions)
                                 if e["contribution"] < 0][:n],
        })
    return out


def explain_tabular(model: Any, frame: pd.DataFrame, reference: dict[str, Any],
                    spec: DatasetSpec, *, n: int = TOP_FEATURES) -> list[dict[str, Any]]:
    """`explain_prediction` for every row at once: rows x (1 + features) variants, one call."""
    features = [f.name for f in spec.features if f.type != "text"]
    width = 1 + len(features)
    bases = frame[spec.feature_names].to_dict(orient="records")
    variants: list[dict[str, Any]] = []
    for base in bases:
        variants.append(base)
        variants.extend({**base, name: reference.get(name)} for name in features)
    stacked = feature_frame(pd.DataFrame.from_records(variants, columns=spec.feature_names),
                            spec)
    proba = np.asarray(model.predict_proba(stacked), dtype=float)
    proba = proba.reshape(len(bases), width, proba.shape[1])
    original = proba[:, 0, :]
    if isinstance(model, CostSensitiveClassifier):
        chosen = np.argmin(original @ model.cost_, axis=1)
    else:
        chosen = np.argmax(original, axis=1)
    picked = proba[np.arange(len(bases)), :, chosen]     # rows x variants, chosen class
    drops = picked[:, :1] - picked[:, 1:]
    out = []
    for r, base in enumerate(bases):
        contributions = [
            {"feature": name, "value": base[name], "reference": reference.get(name),
             "contribution": drop}
            for name, drop in zip(features, drops[r], strict=True)]
        contributions.sort(key=lambda c: -abs(c["contribution"]))
        out.append(to_json({"predicted_class": str(model.classes_[chosen[r]]),
                            "probability": original[r, chosen[r]],
                            "contributions": contributions[:n]}))
    return out
