"""The one shape of every error the API answers, and the bodies of its newer answers.

Every 4xx and 5xx is `{"error": ..., "details": [{"field", "problem"}], "more": N}`. `details`
holds at most `MAX_DETAILS` problems (the first ones, in the order found) and `more` counts
the rest, so a 422 for a thousand bad records stays a few kilobytes instead of hundreds: the
first problems are what a client fixes first, and the count says how much is left.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from pydantic import BaseModel, Field

MAX_DETAILS = 20


class ApiErrorDetail(BaseModel):
    field: str = Field(description="Where the problem is: a dotted path such as `[2].age`, "
                       "a header name, or `body`.")
    problem: str


class ApiError(BaseModel):
    """The body of every error answer."""

    error: str = Field(description="One line saying what went wrong.")
    details: list[ApiErrorDetail] = Field(
        default_factory=list, max_length=MAX_DETAILS,
        description=f"The first {MAX_DETAILS} problems at most.")
    more: int = Field(default=0, ge=0, description="How many further problems were found "
                      "but left out of `details`.")


class FeedbackRejection(BaseModel):
    index: int = Field(description="Position of the label in the request's `labels`.")
    prediction_id: str
    problem: str


class FeedbackAnswer(BaseModel):
    """What happened to each label: accepted ones are landed, rejected ones never stored."""

    accepted: int = Field(description="Labels landed for collection.")
    rejected: list[FeedbackRejection] = Field(
        default_factory=list, description="Every label refused, with its prediction id and "
        "why (an id this server never answered, a class the dataset does not have).")


class ReloadAnswer(BaseModel):
    switched: list[str] = Field(description="`dataset:alias=version` of every switch made.")
    ready: bool


class TrafficAnswer(BaseModel):
    dataset: str
    canary_share: float
    shadow: bool
    challenger: str | None


class HealthAnswer(BaseModel):
    status: str


class ReadyAnswer(BaseModel):
    ready: bool
    serving: dict[str, str] = Field(description="Dataset -> champion version served.")
    problems: dict[str, str] = Field(description="Dataset -> why it has no champion.")


METRICS_RESPONSE = {"description": "Prometheus exposition text",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}


def capped(details: list[dict[str, str]] | None) -> tuple[list[dict[str, str]], int]:
    """The first `MAX_DETAILS` details and how many were left out."""
    details = details or []
    return details[:MAX_DETAILS], max(0, len(details) - MAX_DETAILS)


def error(status: int, message: str, details: list[dict[str, str]] | None = None,
          headers: dict[str, str] | None = None) -> Response:
    """An error answer in the API's one shape (details capped)."""
    shown, more = capped(details)
    payload: dict[str, Any] = {"error": message, "details": shown, "more": more}
    response = jsonify(payload)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
