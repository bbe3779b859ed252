"""A human-readable report of one evaluated model: Markdown, rendered to a standalone HTML page.

`build_model_report` writes `report.md`, `report.html` and the evaluation plots (PNG, linked
relatively) into one directory: a summary, the metrics, per-class results, plots, the top
features, the profile of each predicted segment, optional leaderboard and imbalance-technique
comparison tables, the coverage/accuracy trade-off of confidence-based review, and a business
reading chosen by fields of the spec, never by class names (whom to target when the spec names
a `focus_class`, which rare-class misses remain and what they cost when its expected shares
have rare classes, the weakest class and most common confusion otherwise). Each section is
built by its own small function returning text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from models.data.spec import DatasetSpec
from models.evaluation.boundary import boundary_plane, save_boundary_plot
from models.evaluation.conformal import ConformalReview
from models.evaluation.explain import class_probabilities, global_importance, segment_profiles
from models.evaluation.fairness import fairness_rows, group_fairness
from models.evaluation.metrics import coverage_curve, save_plots
from models.learning.ensembles.base import ensemble_of
from models.learning.imbalance import RARE_RECALL_TARGET, RARE_SHARE
from models.reports.conformal_section import conformal_section
from models.reports.safe_html import markdown_html
from models.reports.shap_section import shap_section
from models.reports.tables import fmt, markdown_table
from models.reports.text_insight import confusions_section, top_words_section, vectoriser_section

Table: TypeAlias = pd.DataFrame | Sequence[Mapping[str, Any]]

REVIEW_THRESHOLDS: tuple[float, ...] = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9)
TOP_FEATURES = 10
CUSTOMER_KEY_FEATURES = ("annual_income", "spending_score", "purchase_frequency")
PLOT_TITLES = {
    "confusion_matrix": "Confusion matrix",
    "roc_curves": "ROC curves",
    "precision_recall_curves": "Precision-recall curves",
    "reliability_diagram": "Reliability diagram",
    "decision_boundary": "Decision regions on the main plane of the numeric columns",
}
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "f1_macro": "Macro F1",
    "precision_macro": "Macro precision",
    "recall_macro": "Macro recall",
    "roc_auc_ovr": "ROC AUC (one-vs-rest, macro)",
    "log_loss": "Log loss",
    "brier_score": "Brier score",
    "calibration_error": "Expected calibration error",
    "total_cost": "Total cost",
    "mean_cost": "Mean cost per row",
    "cost_sensitive_accuracy": "Cost-sensitive accuracy",
    "profit_score": "Profit over the majority baseline",
    "review_share": "Share sent to review",
    "accuracy_when_confident": "Accuracy when confident",
}
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 62rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .95rem; }
th, td { border: 1px solid #ccc; padding: .3rem .7rem; }
th { background: #f2f4f7; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f2f4f7; padding: 0 .25rem; border-radius: 3px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; margin: .5rem 0; }
"""


# --------------------------------------------------------------------------- formatting


def amount(value: float | None) -> str:
    """A quantity for prose: whole or large numbers with thousands separators, else 2 decimals."""
    if value is None:
        return "n/a"
    number = float(value)
    if number.is_integer() or abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:,.2f}"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _records(table: Table) -> list[dict[str, Any]]:
    """A table given as a DataFrame (a named index becomes a column) or as a list of dicts."""
    if isinstance(table, pd.DataFrame):
        if not isinstance(table.index, pd.RangeIndex):
            table = table.reset_index()
        return [{str(k): v for k, v in row.items()} for row in table.to_dict("records")]
    return [dict(row) for row in table]


def _costs(spec: DatasetSpec, classes: Sequence[str]) -> np.ndarray | None:
    """The spec's cost matrix with rows and columns in the order of `classes`."""
    if spec.cost_matrix is None:
        return None
    index = [spec.classes.index(c) for c in classes]
    return np.asarray(spec.cost_matrix, dtype=float)[np.ix_(index, index)]


def _misses(
    matrix: np.ndarray, classes: Sequence[str], i: int, costs: np.ndarray | None
) -> tuple[list[str], float | None]:
    """How the true-class-i rows were mispredicted (one phrase per class) and what it cost."""
    parts, total = [], 0.0
    for j, name in enumerate(classes):
        count = int(matrix[i, j])
        if j == i or count == 0:
            continue
        unit = f" (cost {amount(costs[i, j])} each)" if costs is not None else ""
        parts.append(f"{count} as {name}{unit}")
        total += count * (costs[i, j] if costs is not None else 0.0)
    return parts, (total if costs is not None else None)


# --------------------------------------------------------------------------- sections


def summary_section(spec: DatasetSpec, algorithm: str, metrics: Mapping[str, Any]) -> str:
    text = (
        f"A **{algorithm}** model for the **{spec.name}** dataset, evaluated on "
        f"{metrics.get('n', 'n/a')} held-out rows and {len(spec.classes)} classes "
        f"({', '.join(spec.classes)}): accuracy {fmt(metrics.get('accuracy'))}, balanced "
        f"accuracy {fmt(metrics.get('balanced_accuracy'))}, macro F1 "
        f"{fmt(metrics.get('f1_macro'))}, ROC AUC {fmt(metrics.get('roc_auc_ovr'))}."
    )
    if metrics.get("total_cost") is not None:
        text += (
            f" Its errors cost {amount(metrics['total_cost'])} in cost-matrix units "
            f"(profit over the majority baseline {fmt(metrics.get('profit_score'))})."
        )
    if metrics.get("review_share") is not None:
        text += (
            f" {percent(metrics['review_share'])} of the rows fall below the confidence "
            f"threshold of {spec.confidence_threshold:.2f} and go to review."
        )
    about = f"_{spec.description}_\n\n" if spec.description else ""
    return f"## Summary\n\n{about}{text}"


def metrics_section(metrics: Mapping[str, Any]) -> str:
    rows = [{"metric": label, "value": metrics[key]}
            for key, label in METRIC_LABELS.items() if key in metrics]
    return f"## Metrics\n\n{markdown_table(rows)}"


def per_class_section(metrics: Mapping[str, Any]) -> str:
    rows = [
        {"class": name, "precision": m.get("precision"), "recall (sensitivity)": m.get("recall"),
         "F1": m.get("f1"), "specificity": m.get("specificity"), "support": m.get("support")}
        for name, m in metrics["per_class"].items()
    ]
    return f"## Per-class metrics\n\n{markdown_table(rows)}"


PLOT_CAPTIONS = {
    "decision_boundary": (
        "A slice, not the whole model: the plane of the two main principal components of the "
        "standardised numeric columns, every categorical column at its most common value. "
        "Regions are the model's class on that plane; dots are the test rows by true class, "
        "outlined when predicted wrong. A dot off the plane may sit in another colour and "
        "still be predicted right."),
}


def plots_section(plots: Mapping[str, str]) -> str:
    images = [f"### {PLOT_TITLES.get(name, name)}\n\n![{PLOT_TITLES.get(name, name)}]"
              f"({Path(path).name})"
              + (f"\n\n{PLOT_CAPTIONS[name]}" if name in PLOT_CAPTIONS else "")
              for name, path in plots.items()]
    return "## Plots\n\n" + "\n\n".join(images)


def features_section(importance: Sequence[Mapping[str, Any]]) -> str:
    rows = [{"rank": rank, "feature": f"`{item['feature']}`", "importance": item["importance"],
             "std": item.get("std")} for rank, item in enumerate(importance[:TOP_FEATURES], 1)]
    intro = (
        "Permutation importance on the test set: how much the score drops when a column's "
        "values are shuffled (mean and standard deviation over repeats)."
    )
    return f"## Top features\n\n{intro}\n\n{markdown_table(rows)}"


def profiles_section(profiles: Mapping[str, Mapping[str, Any]], spec: DatasetSpec) -> str:
    classes = list(profiles)
    rows: list[dict[str, Any]] = [
        {"": "rows predicted", **{c: profiles[c]["count"] for c in classes}},
        {"": "share", **{c: percent(profiles[c]["share"]) for c in classes}},
    ]
    for feature in spec.features_of_type("numeric"):
        rows.append({"": f"`{feature}`", **{
            c: spread_cell(profiles[c]["numeric"][feature]) for c in classes}})
    for feature in spec.features_of_type("categorical"):
        tops = {c: next(iter(profiles[c]["categorical"][feature].items()), None)
                for c in classes}
        rows.append({"": f"top `{feature}`", **{
            c: f"{top[0]} ({percent(top[1])})" if top else "n/a" for c, top in tops.items()}})
    intro = ("The rows of each predicted class: size; for each number its mean, median and "
             "standard deviation (mean / median ± sd); the most common category.")
    return f"## Segment profiles\n\n{intro}\n\n{markdown_table(rows, ['', *classes])}"


def spread_cell(summary: Mapping[str, Any]) -> str:
    """`mean / median ± sd` of one number in one segment (n/a for an empty segment)."""
    if summary.get("mean") is None:
        return "n/a"
    return (f"{amount(summary['mean'])} / {amount(summary['median'])} "
            f"± {amount(summary['std'])}")


FAIRNESS_INTRO = (
    "Per group of each sensitive column (fairlearn's MetricFrame; each class one-vs-rest): "
    "recall, precision and the rate of predicting the class. The validation gate refuses a "
    "model whose macro-recall gap or equalized-odds difference between groups is above the "
    "policy's thresholds (`fairness:` in monitoring/policies.yaml) and significant (p: "
    "permutation test of the group labels); the demographic-parity "
    "difference is shown but blocks only when a policy asks for it, since prevalence may "
    "differ by group. n/a: no row of that class in that group (recall) or the class never "
    "predicted there (precision).")


FAIRNESS_FIGURES = {"recall_gap": "recall gap",
                    "equalized_odds_difference": "equalized-odds difference",
                    "demographic_parity_difference": "demographic-parity difference"}


def fairness_section(figures: Mapping[str, Mapping[str, Any]]) -> str:
    """The per-group table and, per column, the differences the gate judges."""
    if not figures:
        return ("## Fairness by group\n\nNo sensitive column with at least two groups large "
                "enough to compare.")
    lines = [f"- **{column}**: " + ", ".join(
                 f"{label} {fmt(f[key])} (p {fmt(f.get('p_values', {}).get(key))})"
                 for key, label in FAIRNESS_FIGURES.items())
             + (f" (groups left out, too few rows: {', '.join(f['skipped_groups'])})"
                if f.get("skipped_groups") else "")
             for column, f in figures.items()]
    rows = fairness_rows(figures)
    return (f"## Fairness by group\n\n{FAIRNESS_INTRO}\n\n" + "\n".join(lines) + "\n\n"
            + markdown_table(rows))


def table_section(heading: str, table: Table, intro: str) -> str:
    return f"## {heading}\n\n{intro}\n\n{markdown_table(_records(table))}"


def ensemble_section(summary: Mapping[str, Any]) -> str:
    """The ensemble against its members on held-out data, and how different the members are."""
    rows = [*summary["members"], {"member": f"**ensemble** ({summary['ensemble']})",
                                  "validation_f1_macro": summary["validation_f1_macro"],
                                  "role": ""}]
    intro = (
        "Macro F1 of each member and of the ensemble on rows they did not train on "
        "(out-of-fold, or the held-out competence set). Mean pairwise disagreement "
        f"{fmt(summary['mean_disagreement'])} and Q-statistic "
        f"{fmt(summary['mean_q_statistic'])} (1 = the members err together, 0 = "
        "independently): the lower Q, the more an ensemble can gain over its best member."
    )
    if summary.get("validation_is_optimistic"):
        intro += (" The ensemble's own figure is measured on the folds its weights were chosen "
                  "on, so it flatters it: the held-out metrics above are the fair comparison.")
    return f"## Ensemble and members\n\n{intro}\n\n{markdown_table(rows)}"


def review_section(points: Sequence[Mapping[str, Any]], threshold: float) -> str:
    rows = [{"confidence at least": p["threshold"], "coverage": percent(p["coverage"]),
             "rows decided": p["n_covered"], "accuracy": p["accuracy"]} for p in points]
    chosen = next((p for p in points if p["threshold"] == threshold), None)
    intro = (
        "Rows whose top-class probability is below a threshold go to a human; the model "
        "answers the others. Higher thresholds answer fewer rows, more accurately."
    )
    if chosen is not None:
        intro += (
            f" At the dataset's threshold of {threshold:.2f}, the model decides "
            f"{percent(chosen['coverage'])} of the rows with accuracy {fmt(chosen['accuracy'])}."
        )
    return f"## Confidence-based review\n\n{intro}\n\n{markdown_table(rows)}"


def focus_reading(
    spec: DatasetSpec, metrics: Mapping[str, Any], profiles: Mapping[str, Any],
    X: pd.DataFrame,
) -> str:
    """Whom to target: the predicted focus class, its profile, precision and missed cost."""
    focus = str(spec.focus_class)
    classes = list(metrics["classes"])
    high = profiles[focus]
    numeric = high["numeric"]
    keys = [f for f in CUSTOMER_KEY_FEATURES if f in numeric] or list(numeric)
    traits = ", ".join(
        f"`{f}` {amount(numeric[f]['mean'])} (vs {amount(pd.to_numeric(X[f]).mean())} overall)"
        for f in keys
    )
    scores = metrics["per_class"][focus]
    text = [
        f"**Target the {focus} segment.** The model predicts {high['count']} rows "
        f"({percent(high['share'])}) as {focus}. On average they have {traits}.",
        f"Precision of the {focus} predictions is {fmt(scores['precision'])}: about "
        f"{round(100 * scores['precision'])} of every 100 rows targeted as {focus} really "
        f"are; the model finds {percent(scores['recall'])} of the truly {focus} rows.",
    ]
    i = classes.index(focus)
    costs = _costs(spec, classes)
    matrix = np.asarray(metrics["confusion_matrix"])
    parts, cost = _misses(matrix, classes, i, costs)
    if not parts:
        text.append(f"No {focus} row of the test set was missed.")
        return "\n\n".join(text)
    missed = f"Missed {focus} rows: {', '.join(parts)}"
    if costs is None:
        text.append(missed + ".")
        return "\n\n".join(text)
    text.append(
        f"{missed}, costing {amount(cost)} of the total cost of "
        f"{amount((matrix * costs).sum())}. Missing a {focus} row costs up to "
        f"{amount(costs[i].max())} per row; deciding by expected cost (`cost_sensitive`) "
        "or weighting classes by cost (`cost_weight`) catches more of them at some loss of "
        "precision."
    )
    return "\n\n".join(text)


def rare_class_reading(
    spec: DatasetSpec, metrics: Mapping[str, Any], rare: Sequence[str]
) -> str:
    """Which rare-class misses remain, what they cost, and each rare class's sensitivity."""
    classes = list(metrics["classes"])
    matrix = np.asarray(metrics["confusion_matrix"])
    costs = _costs(spec, classes)
    lines, total = [], 0.0
    for name in rare:
        i = classes.index(name)
        support = int(matrix[i].sum())
        if support == 0:
            lines.append(f"- **{name}**: no cases in the test set.")
            continue
        parts, cost = _misses(matrix, classes, i, costs)
        line = (f"- **{name}**: sensitivity {fmt(metrics['per_class'][name]['sensitivity'])}, "
                f"{int(matrix[i, i])} of {support} cases detected")
        if parts:
            line += f"; {support - int(matrix[i, i])} missed: {', '.join(parts)}"
            line += f", costing {amount(cost)}." if cost is not None else "."
            total += cost or 0.0
        else:
            line += "; none missed."
        lines.append(line)
    text = f"**Rare classes** (expected share below {percent(RARE_SHARE)}):\n\n" + "\n".join(lines)
    if costs is not None:
        text += (f"\n\nRare-class misses cost {amount(total)} in total, of the model's total "
                 f"cost of {amount((matrix * costs).sum())} on this test set.")
    below = [n for n in rare if metrics["per_class"][n]["support"]
             and metrics["per_class"][n]["sensitivity"] < RARE_RECALL_TARGET]
    if below:
        text += (
            f"\n\nSensitivity of {', '.join(below)} is below the {RARE_RECALL_TARGET:.2f} "
            "target: tuning decision thresholds for recall (`threshold_recall`) or deciding by "
            "expected cost (`cost_sensitive`) trades false alarms for fewer misses."
        )
    else:
        text += f"\n\nEvery rare class reaches the {RARE_RECALL_TARGET:.2f} sensitivity target."
    return text


def generic_reading(metrics: Mapping[str, Any]) -> str:
    """The weakest class by F1 and the most common confusion."""
    classes = list(metrics["classes"])
    per_class = metrics["per_class"]
    weakest = min(classes, key=lambda c: per_class[c]["f1"])
    text = (f"The weakest class is **{weakest}** (F1 {fmt(per_class[weakest]['f1'])}, precision "
            f"{fmt(per_class[weakest]['precision'])}, recall {fmt(per_class[weakest]['recall'])}).")
    errors = np.asarray(metrics["confusion_matrix"]).copy()
    np.fill_diagonal(errors, 0)
    if errors.max() == 0:
        return text + " The model made no misclassification on the test set."
    i, j = np.unravel_index(int(np.argmax(errors)), errors.shape)
    share = errors[i, j] / max(per_class[classes[i]]["support"], 1)
    return text + (
        f" The most common confusion is true **{classes[i]}** predicted as **{classes[j]}**: "
        f"{int(errors[i, j])} rows ({percent(share)} of {classes[i]})."
    )


def distinctive_traits(profile: Mapping[str, Any], X: pd.DataFrame, spec: DatasetSpec,
                       top: int = 3) -> list[str]:
    """The numbers that set a segment apart: its mean furthest from the overall mean, in
    overall standard deviations (at least a fifth of one), with the direction."""
    traits = []
    for feature in spec.features_of_type("numeric"):
        values = pd.to_numeric(X[feature], errors="coerce")
        mean, sd = values.mean(), values.std()
        own = profile["numeric"][feature]["mean"]
        if own is None or not sd or not np.isfinite(sd):
            continue
        distance = (own - mean) / sd
        if abs(distance) >= 0.2:
            traits.append((abs(distance), f"{'higher' if distance > 0 else 'lower'} "
                           f"`{feature}` ({amount(own)} vs {amount(mean)})"))
    return [text for _, text in sorted(traits, reverse=True)[:top]]


def segment_recommendations(spec: DatasetSpec, metrics: Mapping[str, Any],
                            profiles: Mapping[str, Any], X: pd.DataFrame) -> str:
    """One recommendation per predicted segment: its size, what sets it apart, how sure a
    row put in it is (precision), and the spec's action for it when it names one."""
    actions = spec.class_actions or {}
    lines = []
    for name in spec.classes:
        profile = profiles.get(name)
        if not profile or not profile["count"]:
            lines.append(f"- **{name}**: no row predicted; nothing to act on.")
            continue
        scores = metrics["per_class"].get(name, {})
        traits = distinctive_traits(profile, X, spec)
        sure = scores.get("precision")
        text = (f"- **{name}** ({profile['count']} rows, {percent(profile['share'])}): "
                + (", ".join(traits) if traits else "close to the overall means")
                + (f"; {round(100 * sure)} of every 100 rows put here really belong"
                   if sure is not None else ""))
        if name in actions:
            text += f". **Do:** {actions[name]}"
        lines.append(text + ".")
    intro = ("Each predicted segment, what sets it apart from all rows (mean furthest from "
             "the overall mean, in standard deviations) and how reliable the assignment is"
             + ("; the action is the dataset's own (`class_actions` in its spec)."
                if actions else "."))
    return "### Every segment\n\n" + intro + "\n\n" + "\n".join(lines)


def business_section(
    spec: DatasetSpec, metrics: Mapping[str, Any], profiles: Mapping[str, Any],
    X: pd.DataFrame,
) -> str:
    """The reading the spec asks for: finding its `focus_class` (then a recommendation for
    every segment), else the rare classes' misses, else the generic one (chosen by fields of
    the spec, never by class names)."""
    rare = [c for c in spec.classes if (spec.class_shares or {}).get(c, 1.0) < RARE_SHARE]
    if spec.focus_class is not None and spec.focus_class in profiles:
        body = (focus_reading(spec, metrics, profiles, X) + "\n\n"
                + segment_recommendations(spec, metrics, profiles, X))
    elif rare:
        body = rare_class_reading(spec, metrics, rare)
    else:
        body = generic_reading(metrics)
    return f"## Business reading\n\n{body}"


# --------------------------------------------------------------------------- report


def render_html(text: str, title: str) -> str:
    """A standalone HTML page of Markdown `text` (tables extension, inline CSS)."""
    body = markdown_html(text)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


LEADERBOARD_COLUMNS = ("rank", "name", "tied", "p_vs_best", "selection_f1", "score",
                       "f1_macro", "accuracy", "fit_seconds")


def leaderboard_table(leaderboard: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The leaderboard as the report shows it: tie group, p vs best and score side by side.

    `tied` says whether a candidate's macro F1 is statistically tied with the best one's (only
    those get a multi-criteria `score`); `selection_f1` is the cross-validated macro F1
    selection compared, `f1_macro` the held-out figure; baselines have no rank.
    """
    return [{"rank": row.get("rank") if row.get("rank") is not None else "baseline",
             **{key: row.get(key) for key in LEADERBOARD_COLUMNS[1:]}} for row in leaderboard]


IMBALANCE_INTRO = (
    "Each algorithm of this run under its planned imbalance technique and the compared ones "
    "(the same parameters, candidates of the leaderboard above; rank: their place there), "
    "scored on the same held-out rows: overall, then recall and F1 of every class.")


LEADERBOARD_INTRO = ("The candidates compared in this run. Performance first: a candidate whose "
                     "cross-validated macro F1 (selection_f1) is significantly below the best's "
                     "(corrected resampled t-test on the same folds, p_vs_best < 0.05), or more "
                     "than 0.01 below its mean, is out of the tie group and cannot win; the "
                     "multi-criteria score ranks the tied candidates only.")


def build_model_report(
    *,
    spec: DatasetSpec,
    model: Any,
    algorithm: str,
    metrics: Mapping[str, Any],
    X_test: pd.DataFrame,
    y_test: Any,
    out_dir: str | Path,
    leaderboard: Table | None = None,
    importance: Sequence[Mapping[str, Any]] | None = None,
    profiles: Mapping[str, Any] | None = None,
    comparison: Table | None = None,
    title: str | None = None,
    fits: str | None = None,
    fairness: Mapping[str, Mapping[str, Any]] | None = None,
    vectorisers: Table | None = None,
    conformal: ConformalReview | None = None,
) -> Path:
    """Write report.md, report.html and the plots into `out_dir`; return the HTML path.

    `metrics` is `models.evaluation.metrics.evaluate` of the model on (X_test, y_test), with the
    spec's classes. Importance and profiles are computed on the test set when not given.
    `fits` says which fit the figures describe and which one is served (refit_full).
    `fairness` (`models.evaluation.fairness.group_fairness`, as in the gate's evidence) is
    computed on the test set when not given and the spec names sensitive columns.
    A text model's report adds its top words per class and common confusions with example
    texts, and `vectorisers` (`compare_vectorisers_on` of the run's split) when given.
    `conformal` adds the conformal review section (coverage next to the old rule's figures).
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    title = title or f"Model report: {spec.name}, {algorithm}"
    proba = class_probabilities(model, X_test, spec.classes)
    plots = save_plots(y_test, proba, spec.classes, directory)
    plane = boundary_plane(model, X_test, y_test, spec)
    if plane is not None:
        plots["decision_boundary"] = str(save_boundary_plot(
            plane, spec, directory / "decision_boundary.png"))
    if importance is None:
        importance = global_importance(model, X_test, y_test)
    if profiles is None:
        profiles = segment_profiles(X_test, model.predict(X_test), spec)
    thresholds = sorted({*REVIEW_THRESHOLDS, spec.confidence_threshold})
    if fairness is None and spec.sensitive_columns:
        fairness = group_fairness(X_test, y_test, model.predict(X_test),
                                  spec.sensitive_columns, spec.classes)

    sections = [
        f"# {title}",
        summary_section(spec, algorithm, metrics),
        metrics_section(metrics),
        per_class_section(metrics),
        plots_section(plots),
        features_section(importance),
        shap_section(model, X_test, spec),
        profiles_section(profiles, spec),
    ]
    if spec.kind == "text":
        predicted = model.predict(X_test)
        sections += [top_words_section(model, spec.classes),
                     confusions_section(spec, X_test, y_test, predicted)]
        if vectorisers is not None:
            sections.append(vectoriser_section(vectorisers))
    if fits:
        sections.insert(2, f"## Which fit these figures describe\n\n{fits}")
    if leaderboard is not None:
        sections.append(table_section("Leaderboard", leaderboard, LEADERBOARD_INTRO))
    if comparison is not None:
        sections.append(table_section("Imbalance techniques", comparison, IMBALANCE_INTRO))
    ensemble = ensemble_of(model)
    if ensemble is not None:
        sections.append(ensemble_section(ensemble.ensemble_summary()))
    if fairness is not None:
        sections.append(fairness_section(fairness))
    sections += [
        review_section(coverage_curve(y_test, proba, spec.classes, thresholds),
                       spec.confidence_threshold),
        *([conformal_section(conformal)] if conformal is not None else []),
        business_section(spec, metrics, profiles, X_test),
    ]
    text = "\n\n".join(sections) + "\n"
    (directory / "report.md").write_text(text, encoding="utf-8")
    path = directory / "report.html"
    path.write_text(render_html(text, title), encoding="utf-8")
    return path
