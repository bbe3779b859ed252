"""The model report's "SHAP importance" section: which input columns (or, for text, which
words) move the model's output most, from SHAP values of the held-out rows.

It sits beside the permutation "Top features" table: permutation importance says how much
the score needs a column, SHAP how much the column moves each prediction (in the units of the
explainer's output, named in the section). A model SHAP cannot read gets a one-line note
instead of a failed report.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from models.data.spec import DatasetSpec

log = logging.getLogger(__name__)

TOP = 10


def shap_importance(model: Any, X: pd.DataFrame, spec: DatasetSpec, *,
                    seed: int = 0) -> tuple[list[dict[str, Any]], str, str]:
    """(rows of mean |SHAP|, explainer method, output units) over a seeded sample of `X`
    (its own rows are the background: held-out rows, never trained on)."""
    from models.evaluation.shap_values import OUTPUTS, ShapExplainer

    explainer = ShapExplainer(model, spec, X, seed=seed)
    rows = explainer.global_importance(X)
    return rows, f"shap:{explainer.kind}", OUTPUTS[explainer.output]


def shap_section(model: Any, X: pd.DataFrame, spec: DatasetSpec, *, seed: int = 0) -> str:
    """The markdown section (a note when SHAP cannot explain the model)."""
    heading = "## SHAP importance"
    try:
        rows, method, output = shap_importance(model, X, spec, seed=seed)
    except Exception as error:   # the report must not fail for its explanation section
        log.warning("SHAP importance skipped: %s", error)
        return f"{heading}\n\nSHAP could not explain this model ({type(error).__name__}: {error})."
    table = "\n".join(["| rank | feature | mean abs SHAP |", "| --- | --- | --- |", *(
        f"| {rank} | `{str(row['feature']).replace('|', '/')}` | {row['importance']:.4g} |"
        for rank, row in enumerate(rows[:TOP], 1))])
    unit = "words of the articles" if spec.kind == "text" else "input columns"
    intro = (f"Mean absolute SHAP value ({method}; output: {output}) of the {unit}, over up to "
             "200 held-out rows and averaged over classes: how far each one moves a "
             "prediction. One-hot columns and text tokens are summed into their input column.")
    return f"{heading}\n\n{intro}\n\n{table}"
