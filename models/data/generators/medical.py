"""Medical diagnosis: 18 indicators, five classes with two rare diseases.

Healthy / Common Disease A / Common Disease B / Rare Disease C / Very Rare Disease D at about
40 / 25 / 20 / 10 / 5 %. Each disease has its own pattern over symptoms and lab values (A: an
infection with fever, white cells and CRP up; B: metabolic, with glucose, BMI, blood pressure and
cholesterol up; C: an autoimmune anaemia with low haemoglobin, rash and fatigue; D: a cardiac
condition with fast heart rate, low oxygen and chest pain), drawn around normal ranges with
realistic overlap: C shares inflammation with A, D shares age and blood pressure with B.
Drift effects: covariate shift = an ageing, heavier population; label shift = an outbreak of
Rare Disease C; concept drift = a new strain of A without the usual fever and cough.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from models.data.generators.base import STABLE, DriftState, rng_for, shifted_shares
from models.data.spec import DatasetSpec, FeatureSpec

DATASET = "medical"
CLASSES = ("Healthy", "Common Disease A", "Common Disease B", "Rare Disease C",
           "Very Rare Disease D")
SHARES = (0.40, 0.25, 0.20, 0.10, 0.05)
DEFAULT_ROWS = 2500
GENDERS = ("female", "male")

SPEC = DatasetSpec(
    name=DATASET,
    kind="tabular",
    description="Diagnosis from indicators, with rare diseases (synthetic, seeded).",
    features=(
        FeatureSpec(name="age", type="numeric", min=0, max=100),
        FeatureSpec(name="gender", type="categorical", categories=GENDERS),
        FeatureSpec(name="bmi", type="numeric", min=12, max=60),
        FeatureSpec(name="temperature", type="numeric", min=34, max=42, description="deg C"),
        FeatureSpec(name="fatigue", type="numeric", min=0, max=10),
        FeatureSpec(name="pain_level", type="numeric", min=0, max=10),
        FeatureSpec(name="cough", type="numeric", min=0, max=1),
        FeatureSpec(name="headache", type="numeric", min=0, max=1),
        FeatureSpec(name="rash", type="numeric", min=0, max=1),
        FeatureSpec(name="systolic_bp", type="numeric", min=70, max=220),
        FeatureSpec(name="diastolic_bp", type="numeric", min=40, max=140),
        FeatureSpec(name="heart_rate", type="numeric", min=35, max=200),
        FeatureSpec(name="glucose", type="numeric", min=40, max=400, description="mg/dL"),
        FeatureSpec(name="wbc_count", type="numeric", min=1, max=40, description="10^9/L"),
        FeatureSpec(name="crp", type="numeric", min=0, max=300, description="mg/L"),
        FeatureSpec(name="hemoglobin", type="numeric", min=5, max=20, description="g/dL"),
        FeatureSpec(name="cholesterol", type="numeric", min=100, max=400, description="mg/dL"),
        FeatureSpec(name="oxygen_saturation", type="numeric", min=70, max=100),
    ),
    target="diagnosis",
    classes=CLASSES,
    class_shares=dict(zip(CLASSES, SHARES, strict=True)),
    sensitive_columns=("gender",),
    # cost[true][predicted]: a missed rare disease costs far more than a false alarm.
    cost_matrix=(
        (0, 1, 1, 1, 1),
        (5, 0, 2, 2, 2),
        (5, 2, 0, 2, 2),
        (20, 5, 5, 0, 3),
        (50, 10, 10, 5, 0),
    ),
    confidence_threshold=0.6,
)

# (mean, sd) per class, in the order of CLASSES, for the normally distributed indicators.
_NORMAL = {
    "age":               ((42, 15), (40, 16), (56, 12), (38, 13), (62, 11)),
    "bmi":               ((24.5, 3.5), (25, 3.8), (31.5, 4.5), (23, 3.5), (28, 4.5)),
    "temperature":       ((36.8, 0.35), (38.3, 0.6), (36.9, 0.4), (37.4, 0.5), (37.0, 0.45)),
    "fatigue":           ((2, 1.6), (5.5, 1.8), (4, 1.8), (7, 1.6), (6, 1.8)),
    "pain_level":        ((1.5, 1.4), (3.5, 1.8), (2.5, 1.6), (5, 1.8), (7, 1.6)),
    "systolic_bp":       ((120, 11), (122, 12), (145, 15), (115, 12), (138, 20)),
    "diastolic_bp":      ((78, 8), (79, 8), (92, 9), (74, 8), (88, 12)),
    "heart_rate":        ((72, 9), (88, 11), (78, 10), (84, 11), (108, 14)),
    "glucose":           ((92, 12), (98, 15), (150, 32), (95, 14), (118, 25)),
    "wbc_count":         ((7, 1.6), (12, 2.6), (7.5, 1.8), (5.5, 1.6), (9, 2.2)),
    "hemoglobin":        ((14, 1.2), (13.6, 1.2), (14.2, 1.2), (10.2, 1.3), (13, 1.4)),
    "cholesterol":       ((185, 28), (190, 30), (240, 35), (180, 28), (230, 35)),
    "oxygen_saturation": ((97.5, 1.2), (95.5, 1.8), (96.8, 1.3), (96.5, 1.5), (91.5, 2.5)),
}
_CRP_MEDIAN = (2.0, 35.0, 4.0, 22.0, 8.0)               # log-normal, sigma 0.7
# How far each class sits from the healthy profile toward its own pattern (0 = healthy).
SEPARATION = np.array([0.0, 0.6, 0.6, 0.78, 0.82])
_SYMPTOM_P = {                                          # probability of a yes
    "cough":    (0.08, 0.70, 0.10, 0.15, 0.25),
    "headache": (0.12, 0.45, 0.25, 0.35, 0.20),
    "rash":     (0.03, 0.06, 0.04, 0.65, 0.05),
}
_FEMALE_P = (0.5, 0.5, 0.45, 0.72, 0.38)


def generate(batch_date: date, n_rows: int = DEFAULT_ROWS, seed: int = 42,
             drift: DriftState = STABLE) -> pd.DataFrame:
    """One batch of patients for `batch_date`; deterministic in (seed, date, size, drift)."""
    rng = rng_for(DATASET, seed, batch_date)
    shares = shifted_shares(np.array(SHARES), CLASSES.index("Rare Disease C"), drift.label_shift)
    labels = rng.choice(len(CLASSES), size=n_rows, p=shares)
    is_a = labels == CLASSES.index("Common Disease A")
    # A new strain of A (concept drift) presents without fever or cough, with lower oxygen.
    strain = is_a & (rng.random(n_rows) < drift.concept_drift)

    columns: dict[str, np.ndarray] = {}
    for name, table in _NORMAL.items():
        params = np.asarray(table, dtype=float)
        means = params[0, 0] + SEPARATION * (params[:, 0] - params[0, 0])
        columns[name] = means[labels] + params[labels, 1] * rng.standard_normal(n_rows)
    columns["temperature"][strain] -= 1.3
    columns["oxygen_saturation"][strain] -= 2.5
    columns["age"] += 10.0 * drift.covariate_shift
    columns["bmi"] += 2.5 * drift.covariate_shift
    log_crp = np.log(_CRP_MEDIAN)
    log_crp = log_crp[0] + SEPARATION * (log_crp - log_crp[0])
    columns["crp"] = np.exp(log_crp[labels] + 0.7 * rng.standard_normal(n_rows))
    for name, probs in _SYMPTOM_P.items():
        p = np.asarray(probs)[labels]
        if name == "cough":
            p = np.where(strain, 0.15, p)
        columns[name] = (rng.random(n_rows) < p).astype(float)
    female = rng.random(n_rows) < np.asarray(_FEMALE_P)[labels]

    frame = pd.DataFrame({"age": columns["age"],
                          "gender": np.where(female, "female", "male").astype(object)})
    for feature in SPEC.features:
        if feature.name in columns and feature.name != "age":
            frame[feature.name] = columns[feature.name]
    for feature in SPEC.features:
        if feature.type == "numeric":
            frame[feature.name] = np.clip(frame[feature.name], feature.min, feature.max).round(1)
    frame["diagnosis"] = np.asarray(CLASSES, dtype=object)[labels]
    return frame[[*SPEC.feature_names, SPEC.target]]
