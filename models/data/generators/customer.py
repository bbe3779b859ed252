"""Customer segmentation: Low / Medium / High value customers (about 30 / 50 / 20 %).

Each segment has its own profile; inside a segment the behavioural features share one latent
"engagement" factor, so they are correlated, and segments overlap, so good models reach about
85-92 % accuracy rather than 100 %. Drift effects: covariate shift = income inflation and an
ageing population; label shift = more High-value customers; concept drift = the spending score
stops telling segments apart the usual way (Low and High swap their spending profile).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from models.data.generators.base import STABLE, DriftState, rng_for, shifted_shares
from models.data.spec import DatasetSpec, FeatureSpec

DATASET = "customer"
CLASSES = ("Low", "Medium", "High")
SHARES = (0.30, 0.50, 0.20)
DEFAULT_ROWS = 2000
REGIONS = ("north", "south", "east", "west")
GENDERS = ("female", "male")

SPEC = DatasetSpec(
    name=DATASET,
    kind="tabular",
    description="Customer value segments for targeting (synthetic, seeded).",
    features=(
        FeatureSpec(name="age", type="numeric", min=18, max=80),
        FeatureSpec(name="annual_income", type="numeric", min=20_000, max=200_000),
        FeatureSpec(name="spending_score", type="numeric", min=1, max=100),
        FeatureSpec(name="purchase_frequency", type="numeric", min=0, max=60,
                    description="purchases per month"),
        FeatureSpec(name="avg_order_value", type="numeric", min=1, max=2_000),
        FeatureSpec(name="days_since_last_purchase", type="numeric", min=0, max=730),
        FeatureSpec(name="total_purchases", type="numeric", min=0, max=5_000),
        FeatureSpec(name="region", type="categorical", categories=REGIONS),
        FeatureSpec(name="gender", type="categorical", categories=GENDERS),
    ),
    target="segment",
    classes=CLASSES,
    class_shares=dict(zip(CLASSES, SHARES, strict=True)),
    sensitive_columns=("gender",),
    focus_class="High",
    class_actions={
        "High": "retain and reward: premium offers, early access, a named account manager",
        "Medium": "grow: cross-sell and loyalty points that lead towards the High tier",
        "Low": "reactivate cheaply: automated win-back messages, no paid acquisition",
    },
    # cost of predicting column class when the truth is row class: missing a High customer
    # (treating them as Low) is the most expensive mistake.
    cost_matrix=((0, 1, 2), (1, 0, 1), (5, 2, 0)),
    confidence_threshold=0.6,
)

# Per segment (Low, Medium, High): mean and spread of each latent profile value.
_AGE = ((33, 11), (44, 12), (49, 10))
_LOG_INCOME = ((np.log(42_000), 0.30), (np.log(66_000), 0.30), (np.log(105_000), 0.30))
_SPENDING = ((32, 14), (52, 14), (72, 13))
_FREQUENCY = ((1.6, 0.45), (3.4, 0.45), (6.5, 0.40))   # log-normal: median, sigma
_ORDER_VALUE = ((np.log(35), 0.40), (np.log(60), 0.40), (np.log(105), 0.40))
_RECENCY = (70.0, 30.0, 14.0)                             # mean days since last purchase
_TENURE_MONTHS = (14.0, 22.0, 30.0)
_REGION_WEIGHTS = ((0.3, 0.3, 0.2, 0.2), (0.25, 0.25, 0.25, 0.25), (0.2, 0.2, 0.3, 0.3))


def _pick(table: tuple[tuple[float, float], ...], labels: np.ndarray) -> tuple[np.ndarray, ...]:
    arr = np.asarray(table, dtype=float)[labels]
    return arr[:, 0], arr[:, 1]


def generate(batch_date: date, n_rows: int = DEFAULT_ROWS, seed: int = 42,
             drift: DriftState = STABLE) -> pd.DataFrame:
    """One batch of customers for `batch_date`; deterministic in (seed, date, size, drift)."""
    rng = rng_for(DATASET, seed, batch_date)
    shares = shifted_shares(np.array(SHARES), CLASSES.index("High"), drift.label_shift)
    labels = rng.choice(len(CLASSES), size=n_rows, p=shares)
    engagement = rng.standard_normal(n_rows)          # shared within a customer: correlation

    mean, sd = _pick(_AGE, labels)
    age = mean + sd * rng.standard_normal(n_rows) + 12.0 * drift.covariate_shift
    mean, sd = _pick(_LOG_INCOME, labels)
    income = np.exp(mean + sd * rng.standard_normal(n_rows)) * (1 + 0.35 * drift.covariate_shift)

    spend_table = _SPENDING
    if drift.concept_drift:
        # Low and High exchange spending profiles, in proportion to the drift's intensity.
        low, high = np.array(_SPENDING[0]), np.array(_SPENDING[2])
        w = drift.concept_drift
        spend_table = (tuple(low + w * (high - low)), _SPENDING[1], tuple(high + w * (low - high)))
    mean, sd = _pick(spend_table, labels)
    spending = mean + sd * (0.6 * engagement + 0.8 * rng.standard_normal(n_rows))

    median, sigma = _pick(_FREQUENCY, labels)
    frequency = median * np.exp(sigma * (0.6 * engagement + 0.8 * rng.standard_normal(n_rows)))
    mean, sd = _pick(_ORDER_VALUE, labels)
    order_value = np.exp(mean + sd * rng.standard_normal(n_rows))
    recency = rng.exponential(np.asarray(_RECENCY)[labels] * np.exp(-0.3 * engagement))
    tenure = rng.gamma(4.0, np.asarray(_TENURE_MONTHS)[labels] / 4.0)
    total = rng.poisson(np.maximum(frequency * tenure, 0.1))

    region_p = np.asarray(_REGION_WEIGHTS)[labels]
    region = (region_p.cumsum(axis=1) > rng.random((n_rows, 1))).argmax(axis=1)
    gender = rng.integers(0, 2, n_rows)

    return pd.DataFrame({
        "age": np.clip(np.round(age), 18, 80),
        "annual_income": np.clip(np.round(income, -2), 20_000, 200_000),
        "spending_score": np.clip(np.round(spending), 1, 100),
        "purchase_frequency": np.clip(np.round(frequency, 2), 0, 60),
        "avg_order_value": np.clip(np.round(order_value, 2), 1, 2_000),
        "days_since_last_purchase": np.clip(np.round(recency), 0, 730),
        "total_purchases": np.clip(total, 0, 5_000).astype(float),
        "region": np.asarray(REGIONS, dtype=object)[region],
        "gender": np.asarray(GENDERS, dtype=object)[gender],
        "segment": np.asarray(CLASSES, dtype=object)[labels],
    })
