"""Request and response schemas, built from each dataset's spec.

The same pydantic models validate requests, generate the OpenAPI document and check the
rows of a batch-scoring file, so the API, its documentation and `overnight predict` cannot
disagree about what a valid record is. Numbers must be finite and inside the spec's range,
categories one of the spec's values (when it lists them), text a non-empty string; every
feature must be present (JSON `null` means "missing", which the pipelines impute); unknown
fields are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StrictBool,
    StrictStr,
    Tag,
    ValidationError,
    create_model,
)

from models.data.identifiers import feature_column
from models.data.spec import DatasetSpec, FeatureSpec

MAX_TEXT_CHARS = 50_000
CATEGORY_MAX_CHARS = 200          # a category of a feature that lists no categories


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _field(feature: FeatureSpec) -> tuple[Any, Any]:
    """The pydantic type and field of one feature (required; `null` allowed but not text).

    The field is known by the user's exact column name (its alias), for validation, errors,
    dumps and the JSON schema alike.
    """
    description = feature.description or f"{feature.type} feature"
    alias = feature.name
    if feature.type == "numeric":
        number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=feature.min,
                                        le=feature.max)]
        return number | None, Field(..., alias=alias, description=description)
    if feature.type == "categorical":
        if feature.categories:
            return (Literal[feature.categories] | None,
                    Field(..., alias=alias, description=description))
        return StrictStr | None, Field(..., max_length=CATEGORY_MAX_CHARS, alias=alias,
                                       description=description)
    return StrictStr, Field(..., min_length=1, max_length=MAX_TEXT_CHARS, alias=alias,
                            description=description)


def record_model(spec: DatasetSpec) -> type[BaseModel]:
    """One raw input row of a dataset: its spec's features, nothing else.

    Python field names are internal (`f0, f1, ...`) and each field's alias is the user's
    column name, so any column name works (case twins, dots, quotes, `model_config`...):
    requests are validated by those names only, and dumps and the OpenAPI schema use them.
    """
    fields: dict[str, Any] = {feature_column(i): _field(f) for i, f in enumerate(spec.features)}
    return create_model(
        f"{_camel(spec.name)}Record",
        __config__=ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False,
                              serialize_by_alias=True),
        __doc__=f"One {spec.name} record: {', '.join(spec.feature_names)}.",
        **fields,
    )


def predict_body_model(spec: DatasetSpec, record: type[BaseModel],
                       max_batch: int) -> type[RootModel[Any]]:
    """One record, or a non-empty list of at most `max_batch` records."""
    records = Annotated[list[record], Field(  # type: ignore[valid-type]
        min_length=1, max_length=max_batch)]
    body = Annotated[
        Annotated[record, Tag("record")]  # type: ignore[valid-type]
        | Annotated[records, Tag("records")],
        Discriminator(lambda value: "records" if isinstance(value, list) else "record"),
    ]
    model: type[RootModel[Any]] = type(
        f"{_camel(spec.name)}PredictRequest", (RootModel[body],),
        {"__doc__": f"One {spec.name} record or a list of up to {max_batch}."})
    return model


_SCHEMA_CACHE: dict[type[BaseModel], dict[str, Any]] = {}


class PredictQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    explain: StrictBool | bool = Field(
        default=False, description="Add each prediction's explanation (slower).")

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Cached: flask-openapi3 asks for a query model's schema on every request (2 ms)."""
        if args or kwargs:
            return super().model_json_schema(*args, **kwargs)
        if cls not in _SCHEMA_CACHE:
            _SCHEMA_CACHE[cls] = super().model_json_schema()
        return _SCHEMA_CACHE[cls]


class ClassPrediction(BaseModel):
    prediction_id: str
    class_name: str = Field(description="The predicted class.")
    class_index: int = Field(description="Index of the class in the model's class list.")
    probabilities: dict[str, float]
    confidence: float = Field(description="Probability of the predicted class.")
    needs_review: bool = Field(description="A person should check this prediction: more "
                               "than half the features missing, or confidence below the "
                               "dataset's threshold (for a model with a conformal "
                               "calibration: a prediction set other than the predicted "
                               "class alone).")
    review_reason: str | None = Field(default=None, description="Why it needs review "
                                      "(e.g. `all features missing`); null when it does not.")
    prediction_set: list[str] | None = Field(
        default=None, description="The conformal prediction set: the classes that hold the "
        "true one at the dataset's review error rate (it needs review when the set is not "
        "exactly the predicted class); null for a model registered without a calibration.")
    model_version: str
    alias: str = Field(description="champion, or challenger when the canary answered.")
    explanation: dict[str, Any] | None = None


class PredictResponse(BaseModel):
    request_id: str
    dataset: str
    predictions: list[ClassPrediction]


class FeedbackLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prediction_id: StrictStr = Field(min_length=1, max_length=64)
    label: StrictStr = Field(min_length=1, max_length=200,
                             description="The true class of that prediction.")


class FeedbackRequest(BaseModel):
    """Ground-truth labels for earlier predictions of one dataset."""

    model_config = ConfigDict(extra="forbid")

    dataset: StrictStr = Field(min_length=1, max_length=48)
    labels: list[FeedbackLabel] = Field(min_length=1, max_length=10_000)


class FeedbackResponse(BaseModel):
    accepted: int


class DatasetPath(BaseModel):
    dataset: str = Field(max_length=48, description="Dataset name.")


class ModelInfo(BaseModel):
    dataset: str
    model_version: str
    alias: str
    algorithm: str
    trained_at: str | None
    data_until: str | None = None
    metrics: dict[str, Any]
    classes: list[str]
    confidence_threshold: float
    input_schema: dict[str, Any]
    challenger: str | None = None
    traffic: dict[str, Any]


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="Datasets without a servable champion, and why.")


class TrafficRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: StrictStr = Field(min_length=1, max_length=48)
    canary_share: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    shadow: StrictBool = False


class ErrorDetail(BaseModel):
    field: str
    problem: str


class ErrorResponse(BaseModel):
    error: str
    details: list[ErrorDetail] = Field(default_factory=list)


def field_errors(error: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """pydantic's errors as {field, problem}, the field written as a dotted path.

    The path names the record of a list: `[2].age` for the third record's age.
    """
    out = []
    for item in error.errors(include_url=False):
        location = [str(p) for p in item["loc"]]
        parts = []
        for part in location:
            if part in ("record", "records"):   # the tags of the record-or-list union
                continue
            parts.append(f"[{part}]" if part.isdigit() else part)
        field = ".".join(parts).replace(".[", "[") or "body"
        out.append({"field": f"{prefix}{field}", "problem": item["msg"]})
    return out
