"""The retraining policy: whether a dataset's champion should be retrained tonight, and why.

Thresholds and the cool-down are configured per dataset in a YAML file (`policies.yaml` beside
this module: a `default:` section and one section per dataset that overrides it). Five kinds of
trigger are evaluated: performance degradation (accuracy and macro F1 drop against the
champion's training figures), data drift, model age, new labelled volume since training and a
missing champion. `evaluate_triggers` is a pure function of the evidence and the policy;
`gather_evidence` reads the warehouse read-only; `decide` writes one `retraining_decisions` row
per dataset and night, replaced when the night is re-run.

This module decides only: it must not train, promote, or raise alerts (the nightly loop does,
e.g. with `monitoring.alerts.alerts_for_decision`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.registry.versions import get_alias, get_version
from monitoring.performance import performance_on
from warehouse import connect, get_settings, transaction
from warehouse.errors import OvernightError

POLICY_FILE = Path(__file__).with_name("policies.yaml")
TARGETS_KEY = "targets"     # a section's validation-gate targets (see monitoring/gate.py)
FAIRNESS_KEY = "fairness"   # a section's fairness thresholds of the gate (monitoring/gate.py)
GATE_KEYS = (TARGETS_KEY, FAIRNESS_KEY)


class PolicyError(OvernightError):
    """A policy file that cannot be read (names the file, the section and the key)."""


class RetrainingPolicy(BaseModel):
    """Thresholds of the retraining triggers of one dataset, and its cool-down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_accuracy_drop: float = Field(
        default=0.05, ge=0, le=1,
        description="Largest tolerated drop of accuracy below the champion's training accuracy.")
    max_f1_drop: float = Field(
        default=0.05, ge=0, le=1,
        description="Largest tolerated drop of macro F1 below the champion's training F1.")
    # the threshold; the measured share of drifted columns is `Evidence.share_drifted`
    drift_share: float = Field(
        default=0.5, gt=0, le=1,
        description="Share of drifted columns from which drift fires (or dataset_drift true).")
    max_model_age_days: float = Field(
        default=7, gt=0, description="Age of the champion, in days, beyond which it is retrained.")
    min_new_labelled_rows: int = Field(
        default=20000, ge=1,
        description="New labelled rows since training that justify a retrain.")
    cooldown_days: int = Field(
        default=1, ge=0,
        description="No retrain within this many days after the last retrain decision "
                    "(a missing champion retrains regardless).")
    min_labelled_for_performance: int = Field(
        default=100, ge=1,
        description="Below this many labelled rows tonight, the performance triggers abstain.")
    # the automatic rollback of a promotion (monitoring/rollback.py)
    rollback_margin: float = Field(
        default=0.03, ge=0, le=1,
        description="Automatic rollback: largest tolerated drop of the new champion's labelled "
                    "accuracy below the previous champion's figure.")
    rollback_min_labels: int = Field(
        default=200, ge=1,
        description="Automatic rollback: below this many labelled predictions of the new "
                    "champion, the performance rule abstains.")
    rollback_alpha: float = Field(
        default=0.05, gt=0, lt=1,
        description="Automatic rollback: significance level of the one-sided test of the drop.")
    rollback_cooldown_days: int = Field(
        default=1, ge=0,
        description="Automatic rollback: none on performance until this many days have passed "
                    "since the champion's last switch (a refused artifact rolls back regardless).")
    rollback_watch_days: int = Field(
        default=14, ge=1,
        description="Automatic rollback: the performance rule watches a promoted champion for "
                    "this many days after its switch; a later drop is the retraining policy's.")
    rollback_baseline_days: int = Field(
        default=3, ge=1,
        description="Automatic rollback: the previous champion's figure is its labelled "
                    "accuracy over its last this many days of labelled predictions.")
    # A/B verdicts of served traffic (monitoring/ab_verdict.py) and the gate's use of them
    ab_alpha: float = Field(
        default=0.05, gt=0, lt=1,
        description="Significance level of the A/B verdicts (McNemar, two-proportion test).")
    ab_power: float = Field(
        default=0.8, gt=0, lt=1,
        description="Power at which the A/B verdicts say how many more labels would decide.")
    ab_min_effect: float = Field(
        default=0.02, gt=0, lt=1,
        description="Smallest accuracy difference worth detecting: the labels-needed figure "
                    "is computed for it when the observed difference is smaller.")
    review_error_rate: float = Field(
        default=0.1, gt=0, lt=1,
        description="Error rate of the conformal prediction sets that decide needs_review "
                    "(models/evaluation/conformal.py): a set misses the true class this often.")
    # what a model costs (monitoring/costs.py): prices, and the rise of serving cost that alerts
    cpu_hour_price: float = Field(
        default=0.04, ge=0, description="Price of one CPU-hour (training and serving).")
    gb_hour_price: float = Field(
        default=0.005, ge=0, description="Price of one GB of memory held for one hour.")
    max_cost_rise: float = Field(
        default=0.25, ge=0,
        description="Share by which the cost per 1000 predictions may rise after a promotion "
                    "(0.25 = 25 %) before an alert.")


@dataclass(frozen=True)
class Evidence:
    """What the policy looks at for one dataset and night (None: not known or not measured)."""

    dataset: str
    night_date: date
    champion_version: str | None
    batch_id: str | None = None
    champion_accuracy: float | None = None
    champion_f1: float | None = None
    accuracy: float | None = None
    f1_macro: float | None = None
    n_labelled: int | None = None
    # the measured share of drifted columns; the threshold is `RetrainingPolicy.drift_share`
    share_drifted: float | None = None
    dataset_drift: bool | None = None
    model_age_days: float | None = None
    new_labelled_rows: int | None = None
    last_retrain_date: date | None = None


@dataclass(frozen=True)
class Trigger:
    """One trigger's verdict; `note` is a readable phrase that starts with its name."""

    name: str
    value: float | str | None
    threshold: float | None
    fired: bool
    note: str


@dataclass(frozen=True)
class Decision:
    decision_id: str
    dataset: str
    night_date: date
    batch_id: str | None
    model_version: str | None
    retrain: bool
    reason: str
    triggers: tuple[Trigger, ...]
    cooldown_held: bool

    @property
    def fired(self) -> list[Trigger]:
        return [t for t in self.triggers if t.fired]

    def triggers_json(self) -> str:
        return json.dumps([asdict(t) for t in self.triggers])


def _section(file: Path, name: str, section: Any, base: RetrainingPolicy) -> RetrainingPolicy:
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise PolicyError(f"{file}: section {name!r} must be a mapping of policy settings")
    known = list(RetrainingPolicy.model_fields)
    unknown = sorted(str(key) for key in section if key not in (*known, *GATE_KEYS))
    if unknown:
        raise PolicyError(
            f"{file}: unknown key {', '.join(map(repr, unknown))} in section {name!r};"
            f" known keys: {', '.join([*known, *GATE_KEYS])}")
    settings = {key: value for key, value in section.items() if key not in GATE_KEYS}
    try:
        return RetrainingPolicy.model_validate({**base.model_dump(), **settings})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in error.errors())
        raise PolicyError(f"{file}: section {name!r}: {problems}") from error


def load_policies(path: Path | str | None = None) -> dict[str, RetrainingPolicy]:
    """The policies of a file by dataset, plus 'default'; a missing file gives the defaults.

    Without `path`, the file is the `policy_file` setting when there is one, else the
    `policies.yaml` shipped beside this module. Dataset sections override `default:`.
    """
    file = policy_file(path)
    if not file.exists():
        return {"default": RetrainingPolicy()}
    data = _read(file)
    default = _section(file, "default", data.get("default"), RetrainingPolicy())
    policies = {"default": default}
    for name, section in data.items():
        if name != "default":
            policies[str(name)] = _section(file, str(name), section, default)
    return policies


def policy_file(path: Path | str | None = None) -> Path:
    """The policy file: `path`, else the `policy_file` setting, else the shipped one."""
    return Path(path or getattr(get_settings(), "policy_file", None) or POLICY_FILE)


def _read(file: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise PolicyError(f"{file} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise PolicyError(f"{file}: expected a 'default:' section and one section per dataset")
    return data


def declared_targets(dataset: str, path: Path | str | None = None) -> tuple[Path, Any]:
    """The policy file and the raw `targets:` list of a dataset (its section's, else the
    default section's, else an empty list). The validation gate checks and enforces them:
    targets live with the dataset's settings, not in code."""
    file = policy_file(path)
    if not file.exists():
        return file, []
    data = _read(file)
    for name in (dataset, "default"):
        section = data.get(name)
        if isinstance(section, dict) and TARGETS_KEY in section:
            return file, section[TARGETS_KEY] or []
    return file, []


def declared_fairness(dataset: str, path: Path | str | None = None) -> tuple[Path, Any]:
    """The policy file and the raw `fairness:` thresholds of a dataset: the default section's
    mapping overridden key by key by the dataset's (an empty mapping gives the gate's
    defaults). The validation gate validates them and names a bad key or value."""
    file = policy_file(path)
    if not file.exists():
        return file, {}
    data = _read(file)
    merged: dict[Any, Any] = {}
    for name in ("default", dataset):
        section = data.get(name)
        raw = section.get(FAIRNESS_KEY) if isinstance(section, dict) else None
        if raw is None:
            continue
        if not isinstance(raw, dict):
            return file, raw        # the gate names what is wrong with it
        merged.update(raw)
    return file, merged


def policy_for(dataset: str, policies: dict[str, RetrainingPolicy] | None = None
               ) -> RetrainingPolicy:
    """The policy of one dataset: its own section, else the default one."""
    policies = load_policies() if policies is None else policies
    return policies.get(dataset, policies["default"])


def _missing_champion(ev: Evidence) -> Trigger:
    missing = ev.champion_version is None
    note = (f"missing champion ({ev.dataset} has no champion)" if missing
            else f"champion {ev.champion_version} present")
    return Trigger("missing_champion", ev.champion_version, None, missing, note)


def _drop(name: str, label: str, baseline: float | None, current: float | None,
          threshold: float, ev: Evidence, policy: RetrainingPolicy) -> Trigger:
    if baseline is None:
        return Trigger(name, None, threshold, False, f"{label} drop abstains: no training figure")
    if current is None or not ev.n_labelled:
        return Trigger(name, None, threshold, False,
                       f"{label} drop abstains: nothing labelled tonight")
    drop = round(baseline - current, 6)
    if ev.n_labelled < policy.min_labelled_for_performance:
        return Trigger(name, drop, threshold, False,
                       f"{label} drop abstains: {drop:.3f} rests on {ev.n_labelled} labelled"
                       f" rows (< {policy.min_labelled_for_performance})")
    fired = drop > threshold
    return Trigger(name, drop, threshold, fired,
                   f"{label} drop {drop:.3f} {'>' if fired else '<='} {threshold:g}"
                   f" ({baseline:.3f} at training, {current:.3f} tonight"
                   f" on {ev.n_labelled} labelled rows)")


def _drift(ev: Evidence, policy: RetrainingPolicy) -> Trigger:
    threshold = policy.drift_share
    if ev.share_drifted is None and ev.dataset_drift is None:
        return Trigger("data_drift", None, threshold, False,
                       "data drift abstains: no drift report tonight")
    share_fired = ev.share_drifted is not None and ev.share_drifted >= threshold
    fired = share_fired or bool(ev.dataset_drift)
    share = ("unknown" if ev.share_drifted is None else
             f"{ev.share_drifted:.2f} {'>=' if share_fired else '<'} {threshold:g}")
    detected = ", dataset drift detected" if ev.dataset_drift else ""
    return Trigger("data_drift", ev.share_drifted, threshold, fired,
                   f"data drift (share of drifted columns {share}{detected})")


def _model_age(ev: Evidence, policy: RetrainingPolicy) -> Trigger:
    limit = policy.max_model_age_days
    if ev.model_age_days is None:
        return Trigger("model_age", None, limit, False, "model age abstains: no champion")
    fired = ev.model_age_days > limit
    return Trigger("model_age", ev.model_age_days, limit, fired,
                   f"model age {ev.model_age_days:g} days {'>' if fired else '<='} {limit:g}")


def _new_labels(ev: Evidence, policy: RetrainingPolicy) -> Trigger:
    minimum = policy.min_new_labelled_rows
    if ev.new_labelled_rows is None:
        return Trigger("new_labelled_rows", None, minimum, False,
                       "new labelled rows abstains: no champion")
    fired = ev.new_labelled_rows >= minimum
    return Trigger("new_labelled_rows", ev.new_labelled_rows, minimum, fired,
                   f"new labelled rows since training {ev.new_labelled_rows}"
                   f" {'>=' if fired else '<'} {minimum}")


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _cooldown(ev: Evidence, policy: RetrainingPolicy) -> str | None:
    """The cool-down in force tonight, described, or None when there is none."""
    if ev.last_retrain_date is None:
        return None
    days = (ev.night_date - ev.last_retrain_date).days
    if days > policy.cooldown_days:
        return None
    return (f"(last retrain decided {ev.last_retrain_date.isoformat()}, {_days(days)} ago;"
            f" cool-down {_days(policy.cooldown_days)})")


def decision_id(dataset: str, night_date: date) -> str:
    return f"{dataset}:{night_date.isoformat()}"


def evaluate_triggers(evidence: Evidence, policy: RetrainingPolicy) -> Decision:
    """Every trigger's verdict and the decision with its reason (pure: no I/O)."""
    triggers = (
        _missing_champion(evidence),
        _drop("accuracy_drop", "accuracy", evidence.champion_accuracy, evidence.accuracy,
              policy.max_accuracy_drop, evidence, policy),
        _drop("f1_drop", "F1", evidence.champion_f1, evidence.f1_macro, policy.max_f1_drop,
              evidence, policy),
        _drift(evidence, policy),
        _model_age(evidence, policy),
        _new_labels(evidence, policy),
    )
    notes = "; ".join(t.note for t in triggers if t.fired)
    cooldown = _cooldown(evidence, policy)
    missing = triggers[0].fired
    if not notes:
        retrain, reason = False, "No retrain: no trigger fired."
    elif missing:
        retrain = True
        reason = f"Retrain because {notes}" + (
            f", which overrides the cool-down {cooldown}." if cooldown else ".")
    elif cooldown:
        retrain = False
        reason = f"No retrain although {notes} fired: the cool-down holds {cooldown}."
    else:
        retrain, reason = True, f"Retrain because {notes}."
    return Decision(decision_id(evidence.dataset, evidence.night_date), evidence.dataset,
                    evidence.night_date, evidence.batch_id, evidence.champion_version, retrain,
                    reason, triggers, cooldown_held=bool(notes and cooldown and not missing))


def gather_evidence(dataset: str, night_date: date, batch_id: str | None = None) -> Evidence:
    """Read what the policy needs for one night from the warehouse (read-only)."""
    with connect(read_only=True) as con:
        champion = get_alias(dataset, "champion", con)
        drift = con.execute(
            "SELECT share_drifted, dataset_drift FROM drift_reports"
            " WHERE dataset = $d AND night_date = $n"
            " AND ($b::VARCHAR IS NULL OR batch_id = $b::VARCHAR)"
            " AND coalesce(source, 'batch') = 'batch'"
            " ORDER BY created_at DESC LIMIT 1",
            {"d": dataset, "n": night_date, "b": batch_id}).fetchone()
        last = con.execute(
            "SELECT max(night_date) FROM retraining_decisions"
            " WHERE dataset = ? AND retrain AND night_date < ?", [dataset, night_date]).fetchone()
        card: dict[str, Any] = {}
        new_rows: int | None = None
        age: int | None = None
        if champion is not None:
            card = get_version(champion, con).card
            # the date of the newest data it learned from (a backfilled night's model is as
            # old as its data), else the wall-clock training date
            trained = date.fromisoformat(card["data_until"]) if card.get("data_until") else (
                datetime.fromisoformat(card["trained_at"]).date())
            age = (night_date - trained).days
            row = con.execute(
                "SELECT coalesce(sum(n_labelled), 0) FROM batches WHERE dataset = ?"
                " AND status = 'accepted' AND batch_date > ? AND batch_date <= ?",
                [dataset, trained, night_date]).fetchone()
            new_rows = int(row[0]) if row else 0
    tonight = performance_on(dataset, champion, night_date) if champion else None
    metrics = card.get("metrics") or {}
    return Evidence(
        dataset=dataset, night_date=night_date, champion_version=champion, batch_id=batch_id,
        champion_accuracy=metrics.get("accuracy"), champion_f1=metrics.get("f1_macro"),
        accuracy=tonight["accuracy"] if tonight else None,
        f1_macro=tonight["f1_macro"] if tonight else None,
        n_labelled=int(tonight["n_labelled"]) if tonight else None,
        share_drifted=drift[0] if drift else None, dataset_drift=drift[1] if drift else None,
        model_age_days=age, new_labelled_rows=new_rows,
        last_retrain_date=last[0] if last else None,
    )


def record_decision(decision: Decision) -> None:
    """Write the decision's row, replacing the one of an earlier run of the same night."""
    with transaction() as con:
        con.execute(
            "INSERT OR REPLACE INTO retraining_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [decision.decision_id, decision.dataset, decision.batch_id, decision.night_date,
             decision.model_version, decision.retrain, decision.reason,
             decision.triggers_json(), datetime.now(UTC).replace(tzinfo=None)])


def decide(dataset: str, night_date: date, batch_id: str | None = None,
           policy: RetrainingPolicy | None = None) -> Decision:
    """Gather the night's evidence, evaluate the policy and record one decision row."""
    decision = evaluate_triggers(gather_evidence(dataset, night_date, batch_id),
                                 policy or policy_for(dataset))
    record_decision(decision)
    return decision
