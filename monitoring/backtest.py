"""Retraining-policy backtest: replay a drift timeline under several policies, in memory.

For each policy the same nights are generated (same seed, same timeline); the champion is
scored on each night's labelled batch before the night's decision, exactly as the nightly
loop does, and retrained on the recent window when its policy says so. Policies compared:
never retrain, retrain every night, retrain on a fixed schedule, and the configured trigger
policy (`monitoring.policy.evaluate_triggers` on the same evidence the nightly loop gathers).
Training here is a plain fit of one catalogue pipeline, not the Metaflow flow: the backtest
measures a policy's effect on accuracy and compute, quickly, to choose thresholds with evidence.
Every retrain is promoted (there is no gate here), and the automatic-rollback rule
(`monitoring.rollback.evaluate_rollback`, with the policy's rollback settings) watches each
promoted champion as the night does, before the night's retraining decision: on the labelled
nights it served, against the previous champion's last nights, and rolls back to it when the
rule says so (`rollback=False` replays without the rule).
It writes nothing to the warehouse.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.data.datasets import builtin
from models.data.scenarios import Timeline
from models.data.spec import feature_frame
from models.learning.catalogue import get_algorithm
from models.learning.fit import make_model, split_data
from monitoring.drift.nightly import compute_drift
from monitoring.drift.profile import build_profile, prediction_column
from monitoring.policy import Evidence, RetrainingPolicy, evaluate_triggers, policy_for
from monitoring.rollback import Counts, RollbackEvidence, evaluate_rollback

POLICIES = ("never", "every_night", "schedule", "triggers")
RARE_SHARE = 0.15


@dataclass
class NightResult:
    night: str
    accuracy: float | None
    f1_macro: float | None
    rare_recall: float | None
    # the measured share of drifted columns (not the policy's `drift_share` threshold)
    share_drifted: float | None
    retrained: bool
    reason: str
    rolled_back: bool = False           # the rollback rule restored the previous champion
    rollback_reason: str | None = None  # the rule's verdict when it looked (None: nothing to watch)


@dataclass
class PolicyResult:
    policy: str
    nights: list[NightResult] = field(default_factory=list)
    retrains: int = 0
    rollbacks: int = 0
    compute_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        scored = [n for n in self.nights if n.accuracy is not None]
        rare = [n.rare_recall for n in scored if n.rare_recall is not None]
        return {
            "policy": self.policy, "retrains": self.retrains, "rollbacks": self.rollbacks,
            "compute_seconds": round(self.compute_seconds, 2),
            "mean_accuracy": _mean([n.accuracy for n in scored]),
            "worst_accuracy": min((n.accuracy for n in scored if n.accuracy is not None),
                                  default=None),
            "mean_f1_macro": _mean([n.f1_macro for n in scored]),
            "worst_rare_recall": min(rare) if rare else None,
        }


def _mean(values: list[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return float(np.mean(clean)) if clean else None


@dataclass
class _Champion:
    model: Any
    accuracy: float
    f1_macro: float
    trained_on: date
    profile: Any
    name: str = "simulated"
    # (night, labelled, right) of each night it served: the rollback rule's evidence
    served: list[tuple[date, int, int]] = field(default_factory=list)

    def counts(self, last_days: int | None = None) -> Counts:
        """Its labelled nights (its last `last_days` days of them when given)."""
        nights = self.served
        if last_days is not None and nights:
            nights = [s for s in nights if (nights[-1][0] - s[0]).days < last_days]
        return Counts(sum(s[1] for s in nights), sum(s[2] for s in nights))


@dataclass
class _Watch:
    """The champion the rollback rule watches: its previous one and how it came to serve."""

    previous: _Champion | None = None
    switched_on: date | None = None
    restored: bool = False

    def promoted(self, old: _Champion | None, night: date) -> None:
        self.previous, self.switched_on, self.restored = old, night, False


def _watch(champion: _Champion, watch: _Watch, dataset: str, night: date,
           rules: RetrainingPolicy) -> tuple[_Champion, str | None]:
    """The rollback rule on tonight's evidence: the champion that serves on, and the verdict."""
    previous = watch.previous
    if previous is None:
        return champion, None
    evidence = RollbackEvidence(
        dataset, night, champion.name, previous.name, champion.counts(),
        previous.counts(rules.rollback_baseline_days), previous.accuracy, watch.switched_on,
        watch.restored)
    decision = evaluate_rollback(evidence, rules)
    if decision.rollback:
        watch.previous, watch.switched_on, watch.restored = champion, night, True
        return previous, decision.reason
    return champion, decision.reason


def _train(dataset: str, frames: list[pd.DataFrame], trained_on: date, seed: int
           ) -> tuple[_Champion, float]:
    entry = builtin(dataset)
    spec = entry.spec
    frame = pd.concat(frames, ignore_index=True)
    split = split_data(frame, spec, seed=seed)
    imbalanced = any(s < RARE_SHARE for s in (spec.class_shares or {}).values())
    algorithm = "naive_bayes" if spec.kind == "text" else "logistic_regression"
    weight = "class_weight" if imbalanced and get_algorithm(algorithm).class_weight else "none"
    start = time.perf_counter()
    model = make_model(spec, algorithm, imbalance=weight, seed=seed)
    model.fit(split.x_train, split.y_train)
    seconds = time.perf_counter() - start
    predicted = model.predict(split.x_test)
    accuracy = float(np.mean(predicted == split.y_test.to_numpy()))
    f1 = _macro_f1(split.y_test.to_numpy(), predicted, spec.classes)
    profile = build_profile(frame, spec, model)
    return _Champion(model, accuracy, f1, trained_on, profile), seconds


def _macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, labels=list(classes), average="macro",
                          zero_division=0))


def _decide(policy: str, night_index: int, champion: _Champion | None, evidence: Evidence,
            rules: RetrainingPolicy, schedule_days: int) -> tuple[bool, str]:
    if champion is None:
        return True, "no champion"
    if policy == "never":
        return False, "never retrains"
    if policy == "every_night":
        return True, "retrains every night"
    if policy == "schedule":
        due = night_index % schedule_days == 0
        return due, f"every {schedule_days} nights" + ("" if due else " (not due)")
    decision = evaluate_triggers(evidence, rules)
    return decision.retrain, decision.reason


def simulate(dataset: str, timeline: Timeline, nights: int, *, start: date,
             seed: int = 42, rows: int | None = None, window: int = 3, schedule_days: int = 3,
             policies: tuple[str, ...] = POLICIES,
             rules: RetrainingPolicy | None = None, rollback: bool = True
             ) -> list[PolicyResult]:
    """Replay `nights` nights of one built-in dataset under each policy (with the automatic
    rollback rule unless `rollback` is False)."""
    entry = builtin(dataset)
    spec = entry.spec
    timeline = timeline.with_start(start) if timeline.start is None else timeline
    batches = [entry.generate(start + timedelta(days=i), rows or entry.default_rows, seed,
                              timeline.drift_for(dataset, start + timedelta(days=i)))
               for i in range(nights)]
    rules = rules or policy_for(dataset)
    rare = [c for c, s in (spec.class_shares or {}).items() if s < RARE_SHARE]
    out = []
    for policy in policies:
        result = PolicyResult(policy)
        champion: _Champion | None = None
        watch = _Watch()
        last_retrain: date | None = None
        for i, batch in enumerate(batches):
            night = start + timedelta(days=i)
            x, truth = feature_frame(batch, spec), batch[spec.target].to_numpy()
            accuracy = f1 = rare_recall = drift = None
            rolled_back, verdict = False, None
            if champion is not None:
                predicted = champion.model.predict(x)
                accuracy = float(np.mean(predicted == truth))
                champion.served.append((night, len(truth), int(np.sum(predicted == truth))))
                f1 = _macro_f1(truth, predicted, spec.classes)
                if rare:
                    rare_recall = min(float(np.mean(predicted[truth == c] == c)) for c in rare)
                current = x.assign(**{prediction_column(spec): predicted})
                drift = compute_drift(current, champion.profile, spec).share_drifted
                if rollback:
                    serving, verdict = _watch(champion, watch, dataset, night, rules)
                    rolled_back = serving is not champion
                    champion = serving
            # like the night: after a rollback the restored champion has no labels tonight
            tonight = (None, None) if rolled_back else (accuracy, f1)
            evidence = Evidence(
                dataset=dataset, night_date=night,
                champion_version="simulated" if champion else None,
                champion_accuracy=champion.accuracy if champion else None,
                champion_f1=champion.f1_macro if champion else None, accuracy=tonight[0],
                f1_macro=tonight[1], n_labelled=len(batch), share_drifted=drift,
                dataset_drift=None, model_age_days=(night - champion.trained_on).days
                if champion else None,
                new_labelled_rows=len(batch) * (night - champion.trained_on).days
                if champion else None, last_retrain_date=last_retrain)
            retrain, reason = _decide(policy, i, champion, evidence, rules, schedule_days)
            if retrain:
                old = champion
                champion, seconds = _train(dataset, batches[max(0, i - window + 1): i + 1],
                                           night, seed)
                champion.name = f"{policy}-{night.isoformat()}"
                watch.promoted(old, night)
                result.retrains += 1
                result.compute_seconds += seconds
                last_retrain = night
            result.rollbacks += rolled_back
            result.nights.append(NightResult(night.isoformat(), accuracy, f1, rare_recall,
                                             drift, retrain, reason, rolled_back, verdict))
        out.append(result)
    return out


def write_outputs(results: list[PolicyResult], dataset: str, out_dir: Path) -> dict[str, Path]:
    """The summary table (JSON) and a PNG of accuracy over nights per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"dataset": dataset, "summary": [r.summary() for r in results],
            "nights": {r.policy: [asdict(n) for n in r.nights] for r in results}}
    json_path = out_dir / f"backtest-{dataset}.json"
    json_path.write_text(json.dumps(data, indent=2))
    figure, axis = plt.subplots(figsize=(9, 4.5))
    for r in results:
        points = [(n.night, n.accuracy) for n in r.nights if n.accuracy is not None]
        line = axis.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                         label=f"{r.policy} ({r.retrains} retrains, {r.rollbacks} rollbacks)")
        back = [(n.night, n.accuracy) for n in r.nights
                if n.rolled_back and n.accuracy is not None]
        if back:        # the night whose verdict rolled back: a cross on its accuracy
            axis.scatter([b[0] for b in back], [b[1] for b in back], marker="x", s=90,
                         color=line[0].get_color(), zorder=3)
    axis.set_title(f"{dataset}: accuracy of the serving model per night, by policy"
                   " (x: rolled back after that night's labels)")
    axis.set_ylabel("accuracy on the night's labelled batch")
    axis.tick_params(axis="x", rotation=45)
    axis.legend()
    figure.tight_layout()
    png_path = out_dir / f"backtest-{dataset}.png"
    figure.savefig(png_path, dpi=110)
    plt.close(figure)
    return {"json": json_path, "png": png_path}
