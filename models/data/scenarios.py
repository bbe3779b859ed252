"""Named drift scenarios and the timelines that combine them over batch dates.

A scenario names one drift effect and how it unfolds: `gradual_*` ramps up day by day until its
last day, `sudden_*` jumps to full strength at once; after its last day the data recovers. A
timeline (YAML or JSON) lists scenarios per dataset by day offsets from its start date:

    name: demo-week
    start: 2026-01-01          # optional; the demo and backfill set it to their first night
    datasets:
      customer:
        - {scenario: gradual_covariate_shift, from_day: 2, to_day: 4}
      medical:
        - {scenario: label_shift, from_day: 3, to_day: 4, magnitude: 1.0}

Overlapping entries add up (each effect capped at 1.5 times full strength).

`resolve_timeline` reads a timeline file and settles its start date, the same way for a
night's plan, `overnight generate` and `overnight simulate`; `resolve_scenario` turns a
`--scenario NAME|FILE` into one batch's drift and scenario label.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.data.generators.base import STABLE, DriftState
from warehouse.errors import OvernightError

Effect = Literal["covariate_shift", "label_shift", "concept_drift", "new_vocabulary"]
Profile = Literal["ramp", "step"]

SCENARIOS: dict[str, tuple[Effect, Profile] | None] = {
    "stable": None,
    "gradual_covariate_shift": ("covariate_shift", "ramp"),
    "sudden_covariate_shift": ("covariate_shift", "step"),
    "label_shift": ("label_shift", "step"),
    "gradual_label_shift": ("label_shift", "ramp"),
    "concept_drift": ("concept_drift", "step"),
    "gradual_concept_drift": ("concept_drift", "ramp"),
    "new_vocabulary": ("new_vocabulary", "ramp"),
}
MAX_INTENSITY = 1.5
DEMO_TIMELINE = Path(__file__).parent / "timelines" / "demo_week.yaml"
TIMELINE_SUFFIXES = (".yaml", ".yml", ".json")


class ScenarioError(OvernightError):
    """A scenario name or timeline file that cannot be used (says which and why)."""


class ScenarioEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str
    from_day: int = Field(ge=0)
    to_day: int = Field(ge=0)
    magnitude: float = Field(default=1.0, gt=0, le=MAX_INTENSITY)

    @model_validator(mode="after")
    def _valid(self) -> ScenarioEntry:
        if self.scenario not in SCENARIOS:
            raise ValueError(
                f"unknown scenario {self.scenario!r}; known: {', '.join(SCENARIOS)}"
            )
        if self.to_day < self.from_day:
            raise ValueError(f"to_day {self.to_day} is before from_day {self.from_day}")
        return self

    def intensity(self, day: int) -> float:
        """Strength on a given day: 0 outside [from_day, to_day], ramp or step inside."""
        if not self.from_day <= day <= self.to_day:
            return 0.0
        effect = SCENARIOS[self.scenario]
        if effect is None:
            return 0.0
        if effect[1] == "step":
            return self.magnitude
        return self.magnitude * (day - self.from_day + 1) / (self.to_day - self.from_day + 1)


class Timeline(BaseModel):
    """Drift scenarios per dataset along the nights of a run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "timeline"
    description: str = ""
    start: date | None = None
    datasets: dict[str, tuple[ScenarioEntry, ...]] = Field(default_factory=dict)

    def with_start(self, start: date) -> Timeline:
        return self.model_copy(update={"start": start})

    def day_of(self, batch_date: date) -> int:
        if self.start is None:
            raise ScenarioError(f"timeline {self.name!r} has no start date")
        return (batch_date - self.start).days

    def drift_for(self, dataset: str, batch_date: date) -> DriftState:
        """The combined drift state of one dataset's batch on one date."""
        day = self.day_of(batch_date)
        totals: dict[str, float] = {}
        for entry in self.datasets.get(dataset, ()):
            effect = SCENARIOS[entry.scenario]
            if effect is not None:
                totals[effect[0]] = totals.get(effect[0], 0.0) + entry.intensity(day)
        return DriftState(**{k: min(v, MAX_INTENSITY) for k, v in totals.items()})

    def label_for(self, dataset: str, batch_date: date) -> str:
        """Names of the scenarios active on that date ('stable' when none)."""
        day = self.day_of(batch_date)
        active = [e.scenario for e in self.datasets.get(dataset, ()) if e.intensity(day) > 0]
        return "+".join(active) or "stable"


def load_timeline(path: Path | str) -> Timeline:
    """Read a timeline from a YAML or JSON file, with one clear error for any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"cannot read timeline {path}: {error}") from error
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return Timeline.model_validate(data or {})
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        raise ScenarioError(f"timeline {path} is not valid YAML/JSON: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ScenarioError(f"timeline {path}: {where}: {first['msg']}") from error


def single_scenario(name: str, intensity: float = 1.0) -> DriftState:
    """The drift state of one named scenario at a given intensity (for `overnight generate`)."""
    if name not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    effect = SCENARIOS[name]
    if effect is None:
        return STABLE
    return DriftState(**{effect[0]: intensity})


def resolve_timeline(path: Path | str, *, start: date | None = None,
                     default_start: date | None = None) -> Timeline:
    """A timeline file with its day 0: `start` when given, else the file's own start, else
    `default_start` (left without a start when all three are missing)."""
    timeline = load_timeline(path)
    if start is not None:
        return timeline.with_start(start)
    if timeline.start is None and default_start is not None:
        return timeline.with_start(default_start)
    return timeline


def resolve_scenario(scenario: str | Path, dataset: str, batch_date: date, *,
                     intensity: float = 1.0, start: date | None = None
                     ) -> tuple[DriftState, str]:
    """The drift and scenario label of one dataset's batch for a `--scenario NAME|FILE`: a
    named scenario at `intensity`, or a timeline file (YAML/JSON) read at `batch_date` with
    day 0 at `start` (default: the file's own start)."""
    name = str(scenario)
    if name in SCENARIOS:
        return single_scenario(name, intensity), name
    if Path(name).suffix not in TIMELINE_SUFFIXES:
        raise ScenarioError(
            f"--scenario {name!r} is neither a scenario ({', '.join(SCENARIOS)}) "
            "nor a .yaml/.json timeline file"
        )
    timeline = resolve_timeline(name, start=start)
    return timeline.drift_for(dataset, batch_date), timeline.label_for(dataset, batch_date)
