"""Preprocessing from a dataset spec: the first step of every model pipeline.

Numeric columns are made finite (infinities become missing), imputed with the median and
scaled; categorical columns are imputed and one-hot encoded (unseen categories ignored); text
columns are vectorised (see `models.learning.text` for the richer text features). Because it is part
of the saved `Pipeline`, serving never re-implements any of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from models.data.spec import DatasetSpec


def finite_or_nan(values: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Numbers as floats with +-inf turned into NaN, so the imputer treats them as missing."""
    array = np.asarray(values, dtype=float)
    return np.where(np.isfinite(array), array, np.nan)


def as_text(values: pd.DataFrame | pd.Series | np.ndarray) -> np.ndarray:
    """One text column as a 1-d array of strings (missing text becomes empty)."""
    series = pd.DataFrame(values).iloc[:, 0]
    return series.fillna("").astype(str).to_numpy()


def numeric_pipeline() -> Pipeline:
    return Pipeline([
        ("finite", FunctionTransformer(finite_or_nan, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", StandardScaler()),
    ])


def categorical_pipeline() -> Pipeline:
    return Pipeline([
        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ])


def text_pipeline(max_features: int = 20_000) -> Pipeline:
    return Pipeline([
        ("as_text", FunctionTransformer(as_text)),
        ("tfidf", TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2,
                                  max_features=max_features)),
    ])


def tabular_branches(spec: DatasetSpec) -> list[tuple[str, Pipeline, list[str]]]:
    """The numeric and categorical branches of a spec's column transformer (those it has)."""
    branches = []
    numeric = spec.features_of_type("numeric")
    categorical = spec.features_of_type("categorical")
    if numeric:
        branches.append(("numeric", numeric_pipeline(), numeric))
    if categorical:
        branches.append(("categorical", categorical_pipeline(), categorical))
    return branches


def build_preprocessor(spec: DatasetSpec) -> ColumnTransformer:
    """The column transformer of a spec: one branch per feature type that the spec has."""
    branches: list[tuple[str, Pipeline, list[str]]] = tabular_branches(spec)
    branches.extend((f"text_{column}", text_pipeline(), [column])
                    for column in spec.features_of_type("text"))
    return ColumnTransformer(branches, remainder="drop", sparse_threshold=0.3)

