"""The dataset specification: what a dataset's rows look like and what counts as valid.

Every dataset, generated or user-supplied, is described by one `DatasetSpec`. Everything
downstream (quality checks, training, drift, serving validation) reads the spec instead of
knowing the dataset, which is what lets a user's own CSV flow through the platform unchanged.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from models.data.identifiers import header_problem
from warehouse.errors import OvernightError

if TYPE_CHECKING:
    import pandas as pd

FeatureType = Literal["numeric", "categorical", "text"]
TaskKind = Literal["tabular", "text"]
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class SpecError(OvernightError):
    """A dataset specification that cannot be right (names the field and the problem)."""


class FeatureSpec(BaseModel):
    """One input column: its type and, for numbers, its valid range; for categories, values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: FeatureType
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _range_is_ordered(self) -> FeatureSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} is above max {self.max}")
        return self


class DatasetSpec(BaseModel):
    """Name, task kind, features, target and classes of a dataset, plus optional extras."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: TaskKind
    features: tuple[FeatureSpec, ...]
    target: str
    classes: tuple[str, ...]
    class_shares: dict[str, float] | None = Field(
        default=None, description="Expected share of each class (for the distribution check)."
    )
    sensitive_columns: tuple[str, ...] = ()
    cost_matrix: tuple[tuple[float, ...], ...] | None = Field(
        default=None,
        description="cost_matrix[true][predicted], in the order of `classes`; 0 on the diagonal.",
    )
    confidence_threshold: float = Field(default=0.6, ge=0, le=1)
    description: str = ""
    focus_class: str | None = Field(
        default=None,
        description="The class the business acts on (say, the customers to target): with it "
        "the model report's business reading is about finding that class; without, it reads "
        "the rare classes (expected share under 10 %) or the overall figures.")
    class_actions: dict[str, str] | None = Field(
        default=None,
        description="What the business does with the rows of each class (say, 'premium "
        "offers' for High-value customers): the model report's recommendation per class.")
    revision: int = Field(
        default=0, ge=0,
        description="Bumped by `overnight datasets reset-spec`; each revision keeps its rows "
        "apart.")

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                f"dataset name {value!r} must be lower-case letters, digits and underscores, "
                "starting with a letter (at most 48 characters)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        names = [f.name for f in self.features]
        if not names:
            raise ValueError("a dataset needs at least one feature column")
        for column in [*names, self.target]:
            problem = header_problem(column)
            if problem:
                raise ValueError(f"column {column!r} {problem}")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feature columns listed twice: {', '.join(duplicates)}")
        if self.target in names:
            raise ValueError(f"target {self.target!r} is also listed as a feature")
        if len(self.classes) < 2:
            raise ValueError("a classification dataset needs at least two classes")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("class names must be unique")
        for column in self.sensitive_columns:
            if column not in names:
                raise ValueError(f"sensitive column {column!r} is not a feature")
        if self.class_shares is not None and set(self.class_shares) != set(self.classes):
            raise ValueError("class_shares must name exactly the classes")
        if self.cost_matrix is not None:
            k = len(self.classes)
            if len(self.cost_matrix) != k or any(len(row) != k for row in self.cost_matrix):
                raise ValueError(f"cost_matrix must be {k} x {k}, one row per true class")
        unknown = sorted(set(self.class_actions or {}) - set(self.classes))
        if unknown:
            raise ValueError(f"class_actions names classes that are not classes: {unknown}")
        if self.focus_class is not None and self.focus_class not in self.classes:
            raise ValueError(f"focus_class {self.focus_class!r} is not one of the classes")
        if self.kind == "text" and not any(f.type == "text" for f in self.features):
            raise ValueError("a text dataset needs at least one text feature")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def features_of_type(self, kind: FeatureType) -> list[str]:
        return [f.name for f in self.features if f.type == kind]

    def feature(self, name: str) -> FeatureSpec:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def same_as(self, other: DatasetSpec) -> bool:
        """The same columns, types, classes and settings, whatever the revision number."""
        return self.model_dump(exclude={"revision"}) == other.model_dump(exclude={"revision"})

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> DatasetSpec:
        try:
            return cls.model_validate(json.loads(text))
        except (ValueError, TypeError) as error:
            raise SpecError(f"invalid dataset spec: {one_line(error)}") from error


def one_line(error: Exception) -> str:
    """A validation error as one line: `where: what` for each problem."""
    if isinstance(error, ValidationError):
        return "; ".join(
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
            + str(e["msg"]).removeprefix("Value error, ")
            for e in error.errors(include_url=False))
    return " ".join(str(error).split())


def feature_frame(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The spec's feature columns of a frame, categorical values as strings."""
    from pandas.api.types import infer_dtype

    out = frame[spec.feature_names].copy()
    for column in spec.features_of_type("categorical"):
        if out[column].dtype == object and infer_dtype(out[column], skipna=True) in (
                "string", "empty"):
            continue                    # text already (checked in C): nothing to convert
        out[column] = out[column].map(lambda v: v if v is None or v != v else str(v))
    return out
