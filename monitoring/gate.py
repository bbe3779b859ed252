"""The validation gate: may this challenger replace the champion?

The challenger and the champion are judged on the same held-out labelled rows (the
challenger's own held-out split, which it never trained on: for a version refitted on every
labelled row, its fit on the training split, `models.registry.versions.load_judged_model`; the
champion
may have seen some of them, which only favours the champion). Checks, each with a verdict and
its evidence:

- targets: the dataset's declared targets (the `targets:` of its section in the policy file,
  `monitoring/policies.yaml`: they live with the dataset's settings, not in code), each named
  with its measured value, per class where the target is per class;
- baseline: the challenger must beat the majority-class (dummy) prediction significantly by
  McNemar's test on the held-out rows, so that a dataset without targets is still held to
  something: a first model no better than guessing the commonest class is never promoted;
- performance: the config's minimum accuracy and macro F1 (0 unless a caller sets them);
- comparison: not significantly worse than the champion: McNemar's test must not say the
  champion is better, and macro F1 not below the champion's beyond a small tolerance (0.01:
  a retrained model on fresh data that ties the old one within noise may replace it), and
  no rare class may lose recall beyond a tolerance; an ensemble
  challenger (see `models.learning.ensembles.stacking`) must moreover be significantly better by
   McNemar's test,
  since it costs several models' fit and predict time and an ensemble that does not help
  should not be served;
- robustness: accuracy under Gaussian noise on numeric features, missing values, and typos in
  text stays within a tolerance of the clean accuracy; a larger drop blocks only when it is
  also significant (McNemar on the same rows, clean against perturbed): on a few dozen held-out
  rows four answers are a drop of 0.13, which says nothing about the model (issue 18: good
  first models of iris-sized tables were refused by it);
- fairness: per group of each sensitive column (fairlearn's MetricFrame, one-vs-rest per class,
  see `models.evaluation.fairness`), the gap in macro recall and the equalized-odds
  difference block beyond the `fairness:` thresholds of the policy file; the
  demographic-parity difference is reported and blocks only when a policy sets
  `max_demographic_parity_difference` (prevalence may differ by group); a figure blocks only
  when it is also significant (permutation test of the group labels, p below alpha); groups
  under `min_group_rows` rows, and rates resting on under `min_class_rows` rows, are left out;
- input safety: NaN, infinities, out-of-range values, unseen categories and empty text give
  valid probabilities, not a crash;
- shadow (only when this challenger has scored the champion's live requests in shadow mode,
  `monitoring.ab_report.shadow_evidence`): McNemar on the labelled pairs at the policy's
  `ab_alpha`. A significant shadow loss blocks; a significant shadow win is evidence for
  promotion: it stands in for the comparison's held-out demands (the macro-F1 margin, an
  ensemble's significance) unless the held-out rows say the champion is significantly
  better, and the recorded reasons say that it was used ("shadow: evidence for promotion").

One overall score and a pass / fail with reasons go to the warehouse's `validations` table.
A challenger is promoted only with a passing validation.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.data.spec import DatasetSpec
from models.evaluation.fairness import (
    FAIRNESS_ALPHA,
    MIN_CLASS_ROWS,
    MIN_GROUP_ROWS,
    PERMUTATIONS,
    group_fairness,
)
from models.evaluation.metrics import evaluate
from models.evaluation.statistics import holm_significant, mcnemar_test
from models.learning.ensembles.base import ensemble_of
from models.registry.artifacts import HOLDOUT_FILE
from models.registry.versions import get_alias, get_version, load_judged_model, load_model, promote
from monitoring.ab_report import shadow_evidence
from monitoring.ab_verdict import ShadowVerdict
from monitoring.policy import declared_fairness, declared_targets
from warehouse import connect, transaction
from warehouse.errors import OvernightError

RARE_SHARE = 0.15


class GateError(OvernightError):
    pass


OVERALL_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "recall_macro",
                   "precision_macro")
PER_CLASS_METRICS = ("f1", "recall", "sensitivity", "precision", "specificity")
EVERY_CLASS = "every"


class Target(BaseModel):
    """One declared target: the held-out `metric` (of `class`, or of every class) must be
    strictly above `above`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    metric: str
    above: float = Field(ge=0, le=1)
    class_name: str | None = Field(default=None, alias="class")

    def label(self) -> str:
        """How the target reads in the gate's output, e.g. 'sensitivity of Rare Disease C'."""
        return self.metric if self.class_name is None else f"{self.metric} of {self.class_name}"


class FairnessThresholds(BaseModel):
    """What the fairness check tolerates between the groups of a sensitive column (the
    `fairness:` mapping of a policy section). Recall gap and equalized-odds difference block;
    demographic parity blocks only when set, since prevalence may differ by group."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_recall_gap: float = Field(default=0.10, ge=0, le=1)
    max_equalized_odds_difference: float = Field(default=0.20, ge=0, le=1)
    max_demographic_parity_difference: float | None = Field(default=None, ge=0, le=1)
    min_group_rows: int = Field(default=MIN_GROUP_ROWS, ge=1)
    min_class_rows: int = Field(default=MIN_CLASS_ROWS, ge=1)
    permutations: int = Field(default=PERMUTATIONS, ge=19)
    # family-wise: every (sensitive column, blocking figure) judged is one test of one family
    alpha: float = Field(default=FAIRNESS_ALPHA, gt=0, lt=1)

    def limits(self) -> dict[str, float]:
        """The blocking figures and their thresholds."""
        limits = {"recall_gap": self.max_recall_gap,
                  "equalized_odds_difference": self.max_equalized_odds_difference}
        if self.max_demographic_parity_difference is not None:
            limits["demographic_parity_difference"] = self.max_demographic_parity_difference
        return limits


class GateConfig(BaseModel):
    """Thresholds of the gate; a dataset's declared targets come from the policy file."""

    model_config = ConfigDict(extra="forbid")

    min_accuracy: float = 0.0
    min_f1_macro: float = 0.0
    min_improvement: float = 0.0        # challenger F1 must reach champion F1 + this ...
    f1_tolerance: float = 0.01          # ... minus this: a tie within noise is not "worse"
    alpha: float = 0.05
    ensemble_needs_significance: bool = True   # an ensemble must beat the champion by McNemar
    max_rare_recall_drop: float = 0.03
    noise_scale: float = 0.1            # Gaussian noise, in standard deviations of each column
    missing_share: float = 0.1
    typo_share: float = 0.1
    max_robustness_drop: float = 0.10
    fairness: FairnessThresholds = Field(default_factory=FairnessThresholds)
    seed: int = 0
    targets: tuple[Target, ...] = ()
    targets_source: str = ""            # where the targets were declared (for the output)


def parse_targets(raw: Any, source: str) -> tuple[Target, ...]:
    """The declared targets of a `targets:` list, or a GateError naming the file and entry."""
    if not isinstance(raw, list):
        raise GateError(f"{source}: targets must be a list of {{metric, above, class}}")
    targets = []
    for i, entry in enumerate(raw, 1):
        try:
            target = Target.model_validate(entry)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}"
                                 for e in error.errors())
            raise GateError(f"{source}: target {i}: {problems}") from error
        known = PER_CLASS_METRICS if target.class_name is not None else OVERALL_METRICS
        if target.metric not in known:
            raise GateError(
                f"{source}: target {i}: unknown metric {target.metric!r}"
                f"{' for a class' if target.class_name is not None else ''}; known: "
                f"{', '.join(known)}" + ("" if target.class_name is not None else
                                         f" (or {', '.join(PER_CLASS_METRICS)} with class:)"))
        targets.append(target)
    return tuple(targets)


def parse_fairness(raw: Any, source: str) -> FairnessThresholds:
    """The fairness thresholds of a `fairness:` mapping, or a GateError naming the file and key."""
    if not isinstance(raw, dict):
        raise GateError(f"{source}: fairness must be a mapping of "
                        f"{', '.join(FairnessThresholds.model_fields)}")
    try:
        return FairnessThresholds.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'fairness'}: {e['msg']}"
                             for e in error.errors())
        raise GateError(f"{source}: fairness: {problems}") from error


def gate_config_for(dataset: str, policy_path: Any = None) -> GateConfig:
    """The gate's config of a dataset, with the targets and fairness thresholds its policy
    file declares."""
    file, raw = declared_targets(dataset, policy_path)
    fairness = parse_fairness(declared_fairness(dataset, policy_path)[1], f"{file} ({dataset})")
    return GateConfig(targets=parse_targets(raw, f"{file} ({dataset})"),
                      targets_source=str(file), fairness=fairness)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateResult:
    dataset: str
    challenger: str
    champion: str | None
    passed: bool
    score: float
    reasons: list[str]
    checks: list[Check]
    validation_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _proba(model: Any, x: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    proba = model.predict_proba(x)
    out = np.zeros((len(x), len(spec.classes)))
    for j, name in enumerate(str(c) for c in model.classes_):
        out[:, spec.classes.index(name)] = proba[:, j]
    return out


def _metrics(model: Any, x: pd.DataFrame, y: pd.Series, spec: DatasetSpec) -> dict[str, Any]:
    return evaluate(y, _proba(model, x, spec), spec.classes, y_pred=model.predict(x))


def rare_classes(spec: DatasetSpec) -> list[str]:
    return [c for c, s in (spec.class_shares or {}).items() if s < RARE_SHARE]


def _measure(target: Target, name: str | None, metrics: dict[str, Any]) -> float | None:
    if name is None:
        return float(metrics[target.metric])
    value = metrics["per_class"][name][target.metric]
    return None if value is None else float(value)


def check_targets(spec: DatasetSpec, metrics: dict[str, Any], config: GateConfig) -> Check:
    """Each declared target against its measured held-out value (per class where per class).

    A class with no held-out row cannot show that it meets its target, so it fails it."""
    if not config.targets:
        return Check("targets", True, f"no targets declared for {spec.name}"
                     + (f" in {config.targets_source}" if config.targets_source else "")
                     + "; held to the baseline and the champion only")
    met: list[str] = []
    problems: list[str] = []
    evidence: dict[str, Any] = {}
    for target in config.targets:
        names = ([None] if target.class_name is None else list(spec.classes)
                 if target.class_name == EVERY_CLASS else [target.class_name])
        for name in names:
            label = target.metric if name is None else f"{target.metric} of {name}"
            if name is not None and name not in spec.classes:
                problems.append(f"{label}: {name!r} is not a class of {spec.name} "
                                f"({', '.join(spec.classes)})")
                continue
            if name is not None and not metrics["per_class"][name]["support"]:
                problems.append(f"{label}: no held-out row of {name} to measure it on")
                continue
            value = _measure(target, name, metrics)
            ok = value is not None and value > target.above
            evidence[label] = {"value": value, "above": target.above, "passed": ok}
            shown = "n/a" if value is None else f"{value:.3f}"
            (met if ok else problems).append(
                f"{label} {shown} {'>' if ok else 'not above'} {target.above:g}")
    detail = ("missed " + "; ".join(problems) + (f" (met: {', '.join(met)})" if met else "")
              if problems else "every target met: " + ", ".join(met))
    return Check("targets", not problems, detail, evidence)


def check_baseline(y: pd.Series, predicted: np.ndarray, config: GateConfig) -> Check:
    """The challenger must beat the majority-class prediction significantly (McNemar)."""
    majority = str(y.value_counts().idxmax())
    dummy = np.full(len(y), majority, dtype=object)
    test = mcnemar_test(list(y.to_numpy(dtype=object)), list(np.asarray(predicted, dtype=object)),
                        list(dummy), alpha=config.alpha)
    dummy_accuracy = float(np.mean(y.to_numpy() == majority))
    accuracy = float(np.mean(np.asarray(predicted, dtype=object) == y.to_numpy(dtype=object)))
    ok = test["better"] == "a"
    detail = (f"accuracy {accuracy:.3f} vs {dummy_accuracy:.3f} for always predicting "
              f"{majority!r} (McNemar p={test['p_value']:.3g}, {len(y)} held-out rows)"
              + ("" if ok else "; not significantly better than the majority class"))
    return Check("baseline", ok, detail, {"accuracy": accuracy, "dummy_accuracy":
                                          dummy_accuracy, "majority_class": majority,
                                          "mcnemar": test})


def check_performance(metrics: dict[str, Any], config: GateConfig) -> Check:
    ok = metrics["accuracy"] >= config.min_accuracy and metrics["f1_macro"] >= (
        config.min_f1_macro)
    return Check("performance", ok,
                 f"accuracy {metrics['accuracy']:.3f} (minimum {config.min_accuracy:.2f}), "
                 f"macro F1 {metrics['f1_macro']:.3f} (minimum {config.min_f1_macro:.2f})",
                 {"accuracy": metrics["accuracy"], "f1_macro": metrics["f1_macro"]})


def check_rare_classes(spec: DatasetSpec, metrics: dict[str, Any],
                       champion: dict[str, Any] | None, config: GateConfig) -> Check:
    """No rare class may be lost, nor lose recall beyond the tolerance against the champion."""
    problems, evidence = [], {}
    for name in rare_classes(spec):
        recall = metrics["per_class"][name]["recall"]
        before = champion["per_class"][name]["recall"] if champion else None
        evidence[name] = {"recall": recall, "champion_recall": before}
        if recall == 0 and metrics["per_class"][name]["support"]:
            problems.append(f"{name} is never recognised")
        elif before is not None and recall < before - config.max_rare_recall_drop:
            problems.append(f"{name} recall {recall:.2f} < champion {before:.2f}")
    return Check("rare_classes", not problems, "; ".join(problems) or
                 "every rare class keeps its recall", evidence)


def check_comparison(spec: DatasetSpec, challenger: Any, champion: Any, x: pd.DataFrame,
                     y: pd.Series, metrics: dict[str, Any], champion_metrics: dict[str, Any],
                     config: GateConfig) -> Check:
    test = mcnemar_test(y, challenger.predict(x), champion.predict(x), alpha=config.alpha)
    needed = champion_metrics["f1_macro"] + config.min_improvement - config.f1_tolerance
    better = metrics["f1_macro"] >= needed
    worse = test["better"] == "b"
    needs_evidence = config.ensemble_needs_significance and ensemble_of(challenger) is not None
    unproven = needs_evidence and test["better"] != "a"
    detail = (f"macro F1 {metrics['f1_macro']:.3f} vs champion {champion_metrics['f1_macro']:.3f}"
              f" (needs {needed:.3f}); McNemar p={test['p_value']:.3g}"
              + ("; the champion is significantly better" if worse else "")
              + ("; an ensemble must be significantly better than the champion, and is not"
                 if unproven and not worse else ""))
    return Check("comparison", better and not worse and not unproven, detail,
                 {"f1_macro": metrics["f1_macro"], "champion_f1_macro":
                  champion_metrics["f1_macro"], "mcnemar": test,
                  "ensemble_needs_significance": needs_evidence})


def _typos(text: Any, share: float, rng: np.random.Generator) -> Any:
    if not isinstance(text, str) or not text:
        return text
    words = text.split(" ")
    for i in np.flatnonzero(rng.random(len(words)) < share):
        word = words[i]
        if len(word) > 1:
            j = int(rng.integers(0, len(word)))
            words[i] = word[:j] + str(rng.choice(list(string.ascii_lowercase))) + word[j + 1:]
    return " ".join(words)


def perturbations(x: pd.DataFrame, spec: DatasetSpec, config: GateConfig
                  ) -> dict[str, pd.DataFrame]:
    """The noisy copies of the held-out features the robustness check scores."""
    rng = np.random.default_rng(config.seed)
    noisy, holes, typos = x.copy(), x.copy(), x.copy()
    for column in spec.features_of_type("numeric"):
        values = x[column].astype(float)
        noisy[column] = values + rng.normal(0, config.noise_scale * (values.std() or 1.0),
                                            len(x))
    for column in spec.feature_names:
        holes.loc[rng.random(len(x)) < config.missing_share, column] = None
    for column in spec.features_of_type("text"):
        typos[column] = [_typos(t, config.typo_share, rng) for t in x[column]]
    out = {"missing_values": holes}
    if spec.features_of_type("numeric"):
        out["gaussian_noise"] = noisy
    if spec.features_of_type("text"):
        out["typos"] = typos
    return out


def check_robustness(spec: DatasetSpec, model: Any, x: pd.DataFrame, y: pd.Series,
                     clean_accuracy: float, config: GateConfig) -> Check:
    evidence, problems = {}, []
    truth, clean = list(y.to_numpy(dtype=object)), list(np.asarray(model.predict(x), dtype=object))
    for name, frame in perturbations(x, spec, config).items():
        predicted = list(np.asarray(model.predict(frame), dtype=object))
        accuracy = float(np.mean(np.asarray(predicted) == y.to_numpy()))
        evidence[name] = accuracy
        if clean_accuracy - accuracy <= config.max_robustness_drop:
            continue
        test = mcnemar_test(truth, clean, predicted, alpha=config.alpha)
        evidence[f"{name}_p_value"] = test["p_value"]
        if test["better"] == "a":
            problems.append(f"{name}: accuracy {accuracy:.3f} vs clean {clean_accuracy:.3f} "
                            f"(McNemar p {test['p_value']:.3g})")
    return Check("robustness", not problems, "; ".join(problems) or
                 "accuracy holds under " + ", ".join(f"{k} ({v:.3f})"
                                                    for k, v in evidence.items()), evidence)


def fairness_problems(figures: dict[str, dict[str, Any]], thresholds: FairnessThresholds
                      ) -> list[str]:
    """What refuses in `group_fairness` figures: a figure beyond its threshold whose
    permutation p-value stays significant under Holm's control over every (column, figure)
    judged. Each column's figures gain the thresholds and the significant figures (evidence)."""
    tests = {(column, figure): column_figures["p_values"][figure]
             for column, column_figures in figures.items()
             for figure in thresholds.limits() if column_figures[figure] is not None}
    significant = holm_significant(tests, thresholds.alpha)
    problems = []
    for column, column_figures in figures.items():
        column_figures["thresholds"] = thresholds.model_dump()
        column_figures["significant"] = sorted(f for c, f in significant if c == column)
        for figure, limit in thresholds.limits().items():
            value, p_value = column_figures[figure], column_figures["p_values"][figure]
            if value is not None and value > limit and (column, figure) in significant:
                problems.append(f"{column}: {figure.replace('_', ' ')} {value:.3f} above "
                                f"{limit:.2f} between groups (permutation p {p_value:.3g}, "
                                f"significant at {thresholds.alpha:g} over {len(tests)} "
                                "tests, Holm)")
    return problems


def check_fairness(spec: DatasetSpec, model: Any, x: pd.DataFrame, y: pd.Series,
                   config: GateConfig) -> Check:
    """Per-group figures of each sensitive column; a figure beyond its threshold refuses when
    it is also significant: a permutation test of the group labels, with Holm's step-down
    control of the family-wise error over every (column, figure) judged, at the fairness
    `alpha` (0.01 by default, stricter than the gate's 0.05: a refusal can leave a dataset with
    no model, and a hold-out of a hundred rows gives gaps of 0.2 between groups of twenty
    by chance one night in fifty, as a fair customer model showed). A rare class seen a dozen
    times per group gives large gaps by chance (issue 18 was the same trap for robustness).

    The evidence per column is `models.evaluation.fairness.column_fairness` (the per-group
    table, the recall gap, the equalized-odds and demographic-parity differences, each
    one-vs-rest per class, worst class, their p-values) plus the thresholds it was judged
    against."""
    thresholds = config.fairness
    figures = group_fairness(x, y, model.predict(x), spec.sensitive_columns, spec.classes,
                             thresholds.min_group_rows, thresholds.min_class_rows,
                             thresholds.permutations, config.seed)
    problems = fairness_problems(figures, thresholds)
    detail = "; ".join(problems) or (
        "recall gap and equalized-odds difference within limits (or not significant) for "
        + ", ".join(figures) if figures else "no sensitive column with two groups to compare")
    return Check("fairness", not problems, detail, dict(figures))


def unsafe_inputs(x: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Rows a careless client could send: NaN, infinities, extremes, unseen categories."""
    base = x.head(1)
    rows = []
    for make in ("nan", "inf", "-inf", "huge", "unseen"):
        row = base.copy()
        for feature in spec.features:
            if feature.type == "numeric":
                row[feature.name] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf,
                                     "huge": 1e12, "unseen": -1e12}[make]
            elif feature.type == "categorical":
                row[feature.name] = None if make == "nan" else "never-seen-before"
            else:
                row[feature.name] = "" if make in ("nan", "inf") else "zzzz qqqq éèê 😀"
        rows.append(row)
    return pd.concat(rows, ignore_index=True)


def check_input_safety(spec: DatasetSpec, model: Any, x: pd.DataFrame) -> Check:
    frame = unsafe_inputs(x, spec)
    try:
        proba = model.predict_proba(frame)
        ok = bool(np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0))
        detail = ("valid probabilities for NaN, infinite, extreme and unseen inputs" if ok
                  else "invalid probabilities for unusual inputs")
    except Exception as error:  # the point of the check: any crash is a finding
        ok, detail = False, f"crashed on unusual inputs: {type(error).__name__}: {error}"
    return Check("input_safety", ok, detail)


WEIGHTS = {"targets": 0.2, "baseline": 0.1, "performance": 0.05, "comparison": 0.2,
           "rare_classes": 0.15, "robustness": 0.1, "fairness": 0.1, "input_safety": 0.1,
           "shadow": 0.1}
SHADOW_EVIDENCE = "shadow: evidence for promotion: "


def check_shadow(shadow: ShadowVerdict) -> Check:
    """The challenger's live shadow verdict against this champion: a significant loss blocks."""
    return Check("shadow", shadow.winner != "champion",
                 f"live shadow traffic: {shadow.sentence()}", shadow.as_dict())


def with_shadow_win(comparison: Check, shadow: ShadowVerdict | None) -> Check:
    """The comparison, passed on a significant shadow win when the held-out rows fell short
    without saying that the champion is significantly better."""
    if (comparison.passed or shadow is None or shadow.winner != "challenger"
            or comparison.evidence["mcnemar"]["better"] == "b"):
        return comparison
    return Check("comparison", True, f"{comparison.detail}; passed on the significant shadow "
                 f"win on live traffic instead", {**comparison.evidence, "shadow_win": True})


def judge(spec: DatasetSpec, challenger: Any, champion: Any | None, holdout: pd.DataFrame,
          config: GateConfig | None = None, *, challenger_name: str = "challenger",
          champion_name: str | None = None, served: Any | None = None,
          shadow: ShadowVerdict | None = None) -> GateResult:
    """Run every check of the gate on one held-out frame (pure: nothing is written).

    `challenger` is the fit that never saw `holdout`; `served`, when it differs (a refit on
    every labelled row), is what serving will load, so input safety is checked on it too.
    `shadow` is the challenger's live shadow verdict against this champion, if it has one."""
    config = gate_config_for(spec.name) if config is None else config
    labelled = holdout[holdout[spec.target].notna()]
    if labelled.empty:
        raise GateError(f"no labelled held-out rows to judge {challenger_name} on")
    x = labelled[spec.feature_names].reset_index(drop=True)
    y = labelled[spec.target].astype(str).reset_index(drop=True)
    metrics = _metrics(challenger, x, y, spec)
    champion_metrics = _metrics(champion, x, y, spec) if champion is not None else None
    checks = [check_targets(spec, metrics, config),
              check_baseline(y, challenger.predict(x), config),
              *([check_performance(metrics, config)]
                if config.min_accuracy or config.min_f1_macro else []),
              check_rare_classes(spec, metrics, champion_metrics, config)]
    if champion is not None and champion_metrics is not None:
        checks.append(with_shadow_win(check_comparison(
            spec, challenger, champion, x, y, metrics, champion_metrics, config), shadow))
    checks += [check_robustness(spec, challenger, x, y, metrics["accuracy"], config),
               check_fairness(spec, challenger, x, y, config),
               check_input_safety(spec, challenger if served is None else served, x)]
    if shadow is not None and champion is not None:
        checks.append(check_shadow(shadow))
    weights = {c.name: WEIGHTS[c.name] for c in checks}
    score = sum(weights[c.name] for c in checks if c.passed) / sum(weights.values())
    reasons = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    if shadow is not None and champion is not None and shadow.winner == "challenger":
        reasons.append(SHADOW_EVIDENCE + shadow.sentence())
    return GateResult(spec.name, challenger_name, champion_name,
                      all(c.passed for c in checks), round(score, 4), reasons, checks)


def load_holdout(model_version: str) -> pd.DataFrame:
    path = get_version(model_version).artifact_path.parent / HOLDOUT_FILE
    if not path.exists():
        raise GateError(f"{model_version} has no held-out data ({path}); retrain it with "
                        "`overnight train` to validate it")
    return pd.read_parquet(path)


def validate(dataset: str, challenger_version: str, *, night: str | None = None,
             config: GateConfig | None = None) -> GateResult:
    """Judge a registered challenger against the current champion and record the verdict."""
    with connect(read_only=True) as con:
        champion_version = get_alias(dataset, "champion", con)
    served, version = load_model(challenger_version)
    if version.dataset != dataset:
        raise GateError(f"{challenger_version} belongs to {version.dataset}, not {dataset}")
    challenger = load_judged_model(version)[0]   # honest: it never saw the held-out rows
    champion = load_model(champion_version)[0] if champion_version else None
    spec = DatasetSpec.model_validate(version.card["input_schema"])
    shadow = (shadow_evidence(dataset, champion_version, challenger_version)
              if champion_version else None)
    result = judge(spec, challenger, champion, load_holdout(challenger_version), config,
                   challenger_name=challenger_version, champion_name=champion_version,
                   served=served, shadow=shadow)
    result.validation_id = f"{challenger_version}:{night or datetime.now(UTC).date()}"
    record(result)
    return result


def record(result: GateResult) -> None:
    """One validations row per (challenger, night); a re-run replaces it."""
    with transaction() as con:
        con.execute("DELETE FROM validations WHERE validation_id = ?", [result.validation_id])
        con.execute(
            "INSERT INTO validations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [result.validation_id, result.dataset, result.challenger, result.champion,
             result.passed, result.score, json.dumps(result.reasons),
             json.dumps([asdict(c) for c in result.checks], default=str),
             datetime.now(UTC).replace(tzinfo=None)])


def passed_validation(model_version: str) -> bool:
    with connect(read_only=True) as con:
        row = con.execute("SELECT passed FROM validations WHERE challenger_version = ?"
                          " ORDER BY validated_at DESC LIMIT 1", [model_version]).fetchone()
    return bool(row and row[0])


def promote_validated(dataset: str, model_version: str, *, reason: str,
                      changed_by: str = "overnight") -> str | None:
    """Promote a version only if its latest validation passed; returns the old champion."""
    if not passed_validation(model_version):
        raise GateError(f"{model_version} has no passing validation; run "
                        f"`overnight validate --dataset {dataset} --version {model_version}` "
                        "first (a worse model is never promoted)")
    return promote(dataset, model_version, reason=reason, changed_by=changed_by)
