"""The one needs-review rule, shared by training, reports and serving.

A prediction goes to a person when the model's top probability is below the dataset's
`confidence_threshold`: the model report's review share, the coverage curve, the
`needs_review` flag of `/v1/predict` and of `overnight predict` all come from this function, so
the share the report promises is the share serving flags. (Serving adds one more reason,
mostly missing features, which is about the record, not the model's confidence.) A model
calibrated at training replaces the threshold with its conformal prediction set
(`models.evaluation.conformal`); this rule stays for models registered without one.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def below_threshold(confidence: Any, threshold: float) -> np.ndarray:
    """True where a top probability is below `threshold` (the row needs review)."""
    return np.asarray(confidence, dtype=float) < threshold


def answered(confidence: Any, threshold: float) -> np.ndarray:
    """True where the model answers on its own (the complement of `below_threshold`)."""
    return ~below_threshold(confidence, threshold)
