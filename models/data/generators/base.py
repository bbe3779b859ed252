"""What every dataset generator shares: the drift state of a batch date and a seeded RNG.

A generator is a plain function `generate(batch_date, n_rows, seed, drift) -> DataFrame` plus
the `DatasetSpec` it produces. The same seed, date, size and drift give the same frame.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np


@dataclass(frozen=True)
class DriftState:
    """How strongly each drift effect acts on one batch (0 = not at all, 1 = fully).

    - covariate_shift: the feature distribution moves (e.g. income inflation, ageing).
    - label_shift: class priors move (e.g. an outbreak raises a rare disease's share).
    - concept_drift: the feature-to-class relation changes.
    - new_vocabulary: new terms emerge in a text category (news only).
    """

    covariate_shift: float = 0.0
    label_shift: float = 0.0
    concept_drift: float = 0.0
    new_vocabulary: float = 0.0

    def is_stable(self) -> bool:
        return not any(asdict(self).values())

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


STABLE = DriftState()


def rng_for(dataset: str, seed: int, batch_date: date) -> np.random.Generator:
    """A generator seeded by (seed, date, dataset): deterministic, different per date."""
    return np.random.default_rng([seed, batch_date.toordinal(), zlib.crc32(dataset.encode())])


def shifted_shares(shares: np.ndarray, target_index: int, intensity: float,
                   factor: float = 3.0) -> np.ndarray:
    """Class priors with one class multiplied by up to `factor` at full intensity, renormalised."""
    out = shares.astype(float).copy()
    out[target_index] *= 1.0 + (factor - 1.0) * intensity
    return out / out.sum()
