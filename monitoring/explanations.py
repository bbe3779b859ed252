"""Explaining a logged prediction after the fact: its SHAP explanation recomputed from the
inputs the prediction log kept, with the model version that answered it, and the champion's
global SHAP importance. What the board's explanation page, `overnight explain` and the
clinician's report show.

The version is loaded through the registry's verified path (`versions.load_model`: the
artifact's signature must verify before its bytes are unpickled), and the explainer gets the
same background as serving (the training sample registered with the version), so the
numbers are the ones `?explain=true` gave when the prediction was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.data.spec import DatasetSpec
from models.registry.artifacts import REFERENCE_FILE
from warehouse.errors import OvernightError


class ExplanationUnavailable(OvernightError):
    """A prediction or version that cannot be explained (names which and why)."""


@dataclass(frozen=True)
class LoadedVersion:
    model_version: str
    model: Any
    spec: DatasetSpec
    background: pd.DataFrame


def load_version(model_version: str) -> LoadedVersion:
    """A registered version (signature verified) with its spec and SHAP background."""
    from models.registry.versions import RegistryError, load_model

    try:
        model, version = load_model(model_version)
    except (RegistryError, KeyError, LookupError) as error:
        raise ExplanationUnavailable(f"model {model_version} cannot be loaded: {error}"
                                     ) from error
    spec = DatasetSpec.model_validate(version.card["input_schema"])
    path = version.artifact_path.parent / REFERENCE_FILE
    if not path.exists():
        raise ExplanationUnavailable(f"model {model_version} was registered without its "
                                     "training sample, the background SHAP needs")
    return LoadedVersion(model_version, model, spec,
                         pd.read_parquet(path)[spec.feature_names])


def inputs_frame(inputs: dict[str, Any], spec: DatasetSpec) -> pd.DataFrame:
    """The logged inputs as the one-row raw frame the model takes (missing as None)."""
    missing = [name for name in spec.feature_names if name not in inputs]
    if missing:
        raise ExplanationUnavailable(f"the logged inputs lack {', '.join(missing)}")
    row = {name: inputs[name] for name in spec.feature_names}
    frame = pd.DataFrame([row], columns=spec.feature_names)
    for name in spec.features_of_type("numeric"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


def explain_logged(record: dict[str, Any]) -> dict[str, Any]:
    """The SHAP explanation of a logged prediction (a `prediction_record` row), plus why it
    needs review when it does and the typical values (medians, modes) of the training rows."""
    from models.evaluation.shap_values import ShapExplainer

    loaded = load_version(str(record["model_version"]))
    inputs = record.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise ExplanationUnavailable("the prediction log holds no inputs for this prediction")
    frame = inputs_frame(inputs, loaded.spec)
    [explanation] = ShapExplainer(loaded.model, loaded.spec, loaded.background).explain(frame)
    explanation["review_reason"] = review_reason(record, frame, loaded.spec)
    from models.evaluation.explain import reference_values

    explanation["typical"] = reference_values(loaded.background, loaded.spec)
    return explanation


def review_reason(record: dict[str, Any], frame: pd.DataFrame, spec: DatasetSpec) -> str | None:
    """Why serving flagged the prediction for review (its own rule, rerun on the logged
    inputs and confidence), None when it was not flagged."""
    if not bool(record.get("needs_review")):
        return None
    try:
        from models.serving.scoring import review_flags

        _, reasons = review_flags(frame, spec, np.array([float(record["confidence"])]))
        if reasons[0]:
            return reasons[0]
    except Exception:   # a rule that changed since: say what is known
        pass
    return "flagged by the serving rule for a person to check"


def global_importance(model_version: str, *, rows: int = 200) -> list[dict[str, Any]]:
    """Mean |SHAP| per input column (words for text) of a version, over its training sample."""
    from models.evaluation.shap_values import ShapExplainer

    loaded = load_version(model_version)
    explainer = ShapExplainer(loaded.model, loaded.spec, loaded.background)
    return explainer.global_importance(loaded.background, rows=rows)
