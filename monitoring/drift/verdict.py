"""What a drift report yields: the verdict on each column and on the dataset, or `DriftError`.

Why it exists. Every module of the package speaks these types: the nightly report computes
and stores a `DriftSummary`, the Evidently module renders one (and builds one from Evidently's
own verdict, to compare with ours), the profile raises `DriftError`, and the board draws its
line at `DRIFT_SHARE`. Kept apart from the computations, they can be imported without them
(and without a cycle). Plain data: no NumPy, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from warehouse.errors import OvernightError

DRIFT_SHARE = 0.5               # Evidently's DataDriftPreset default


class DriftError(OvernightError):
    """A drift report that cannot be made (names the dataset, batch or column and why)."""


@dataclass(frozen=True)
class ColumnDrift:
    """The verdict on one column: `drifted` says whether `score` crossed `threshold`.

    For distances (wasserstein, jensenshannon) and `oov_share` a score at or above the
    threshold is drift; for p-values (ks, chisquare, z) a score below it is.
    """

    column: str
    column_type: str            # numeric, categorical, text or prediction
    method: str
    score: float
    threshold: float
    drifted: bool

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["score"] = json_float(self.score)
        return out


@dataclass(frozen=True)
class DriftSummary:
    """A drift verdict: one `ColumnDrift` per column, and the dataset-level verdict."""

    dataset: str
    n_reference: int
    n_current: int
    columns: tuple[ColumnDrift, ...]
    drift_share: float = DRIFT_SHARE
    batch_id: str | None = None
    model_version: str | None = None
    night_date: date | None = None
    report_id: str | None = None
    html_path: str | None = None

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    @property
    def n_drifted(self) -> int:
        return sum(c.drifted for c in self.columns)

    @property
    def share_drifted(self) -> float:
        return self.n_drifted / self.n_columns if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Evidently's rule: the share of drifted columns reaches `drift_share`."""
        return bool(self.columns) and self.share_drifted >= self.drift_share

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def column(self, name: str) -> ColumnDrift:
        for item in self.columns:
            if item.column == name:
                return item
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "batch_id": self.batch_id,
            "model_version": self.model_version,
            "night_date": self.night_date.isoformat() if self.night_date else None,
            "report_id": self.report_id, "html_path": self.html_path,
            "n_reference": self.n_reference, "n_current": self.n_current,
            "n_columns": self.n_columns, "n_drifted": self.n_drifted,
            "share_drifted": self.share_drifted, "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "columns": [c.as_dict() for c in self.columns],
        }


def json_float(value: float) -> float | None:
    """A score as JSON and the warehouse store it: None for a missing, NaN or infinite one."""
    return None if value is None or not math.isfinite(value) else float(value)
