"""Prefect flows of the nightly loop: thin wrappers over `orchestration.night`.

    nightly        every configured dataset's night (a subflow per dataset; one dataset's
                   failure does not stop the others), with a Markdown summary artifact
    backfill       the nightly flow for each date of a range, in order (idempotent)
    train_dataset  an on-demand training run of one dataset
    score_file     batch scoring of a file with the champion, on demand or on a schedule

Each stage runs as a Prefect task with retries and a timeout; the stage functions themselves
live in `orchestration.stages`, sequenced by `orchestration.night`, and are tested without
Prefect (tests/integration/test_night.py); the night's Markdown summary comes from
`orchestration.summary`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.runtime import task_run

from models.data.datasets import BUILTIN
from models.data.dates import parse_date
from models.data.scenarios import DEMO_TIMELINE, resolve_timeline
from orchestration.night import DatasetNight, NightObserver, run_dataset_night
from orchestration.stages import NightPlan, StageSkipped, TrainingSettings
from orchestration.summary import night_summary_markdown

STAGE_TIMEOUTS = {"ingest": 600, "monitor": 900, "decide": 300, "train": 3600, "promote": 900}


STAGE_RETRIES = 1


class StageFailed(Exception):
    """A stage that still failed after its retries (the message says how often it ran)."""


@dataclass(frozen=True)
class Skip:
    """A stage with nothing to do, returned (not raised) so Prefect does not retry it."""

    reason: str


@task(name="stage", retries=STAGE_RETRIES, retry_delay_seconds=1, cache_policy=NONE,
      task_run_name="{dataset}-{stage}")
def run_stage(dataset: str, stage: str, fn: Any) -> Any:
    """One stage of one dataset's night; a raise is retried before it counts as failed."""
    try:
        return fn()
    except StageSkipped as skipped:
        return Skip(str(skipped))
    except Exception as error:
        attempts = task_run.run_count
        if attempts <= STAGE_RETRIES:
            raise
        raise StageFailed(f"{type(error).__name__}: {error} (after {attempts} attempts)"
                          ) from error


def _prefect_call(dataset: str):
    def call(stage: str, fn: Any) -> Any:
        runner = run_stage.with_options(timeout_seconds=STAGE_TIMEOUTS[stage])
        result = runner(dataset, stage, fn)
        if isinstance(result, Skip):
            raise StageSkipped(result.reason)
        return result
    return call


def _parse(night: date | str | None) -> date:
    """A date parameter; none (or "") means today UTC."""
    return parse_date(night) if night else datetime.now(UTC).date()


@flow(name="dataset-night", flow_run_name="{dataset}-{night}", log_prints=True)
def dataset_night(plan: NightPlan, dataset: str, night: str,
                  observe: NightObserver | None = None) -> DatasetNight:
    """One dataset's night as a subflow, so each dataset reads on its own in the UI."""
    return run_dataset_night(plan, dataset, call=_prefect_call(dataset), observe=observe)


def build_plan(night: date | str | None = None, datasets: list[str] | None = None,
               timeline_file: str | None = None, timeline_start: date | str | None = None,
               seed: int = 42, rows: int | None = None, force_retrain: bool = False,
               training: dict[str, Any] | None = None, drills: list[str] | None = None
               ) -> NightPlan:
    """A night's plan from flow parameters (plain types, so deployments can set them)."""
    when = _parse(night)
    timeline = None
    if timeline_file:
        timeline = resolve_timeline(timeline_file, default_start=when,
                                    start=_parse(timeline_start) if timeline_start else None)
    return NightPlan(night=when, datasets=list(datasets or BUILTIN), timeline=timeline,
                     seed=seed, rows=rows, force_retrain=force_retrain,
                     training=TrainingSettings(**(training or {})), drills=tuple(drills or ()))


@task(name="collect-serving-logs", retries=2, retry_delay_seconds=5, cache_policy=NONE)
def collect_serving() -> dict[str, Any]:
    """Prediction logs, labels and alerts landed by serving, into the warehouse first."""
    from monitoring.collect import collect_serving_logs

    return collect_serving_logs()


@flow(name="nightly", flow_run_name="night-{night}", log_prints=True)
def nightly(night: str | None = None, datasets: list[str] | None = None,
            timeline_file: str | None = None, timeline_start: str | None = None,
            seed: int = 42, rows: int | None = None, force_retrain: bool = False,
            training: dict[str, Any] | None = None,
            drills: list[str] | None = None,
            observe: NightObserver | None = None) -> list[dict[str, Any]]:
    """The nightly loop for every configured dataset (default: the built-in ones, today UTC).

    `observe` (in-process callers only, e.g. the command line's live progress) is told about
    each dataset's night as its stages finish."""
    plan = build_plan(night, datasets, timeline_file, timeline_start, seed, rows,
                      force_retrain, training, drills)
    logger = get_run_logger()
    collected = collect_serving.with_options(timeout_seconds=600)(return_state=True)
    collect_note = "\n\ncollect: failed, the landed files wait for the next run\n"
    if collected.is_completed():
        counts = collected.result()
        collect_note = (f"\n\ncollect: {counts['predictions']} predictions, "
                        f"{counts['feedback']} labels, {counts['alerts']} alerts; "
                        f"{counts.get('rejected', 0)} landed file(s) rejected\n")
        logger.info("serving logs collected: %s", counts)
        if counts.get("rejected"):
            logger.warning("collect: %s landed file(s) rejected into landing/_rejected/: %s",
                           counts["rejected"], "; ".join(
                               f"{r['kind']}/{r['name']}: {r['reason']}"
                               for r in counts["rejections"]))
    else:   # the files stay in landing/ for the next run; the night goes on
        logger.warning("collecting serving logs failed: %s", collected.message)
    results = []
    for dataset in plan.datasets:
        result = dataset_night(plan, dataset, plan.night.isoformat(), observe)
        logger.info("%s %s: %s", plan.night, dataset, result.stages)
        results.append(result)
    create_markdown_artifact(markdown=night_summary_markdown(plan.night, results) + collect_note,
                             key=f"night-{plan.night.isoformat()}",
                             description=f"overnight: night of {plan.night}")
    return [r.as_dict() for r in results]


@flow(name="backfill", log_prints=True)
def backfill(start: str, end: str, datasets: list[str] | None = None,
             timeline_file: str | None = None, timeline_start: str | None = None,
             seed: int = 42, rows: int | None = None,
             training: dict[str, Any] | None = None,
             observe: NightObserver | None = None) -> list[dict[str, Any]]:
    """The nightly loop for each date from start to end, in order (re-runs are idempotent);
    `observe` is handed to every night (see `nightly`)."""
    first, last = _parse(start), _parse(end)
    if last < first:
        raise ValueError(f"backfill end {last} is before start {first}")
    rows_out: list[dict[str, Any]] = []
    day = first
    while day <= last:
        rows_out += nightly(day.isoformat(), datasets, timeline_file,
                            timeline_start or first.isoformat(), seed, rows, False, training,
                            None, observe)
        day += timedelta(days=1)
    return rows_out


@flow(name="train-dataset", log_prints=True)
def train_dataset(dataset: str, trials: int = 20, optimize: bool = True,
                  algorithms: str = "", window_days: int = 7,
                  end_date: str | None = None, text_stats: bool = False) -> str:
    """An on-demand training run of one dataset (registers a challenger); `text_stats` adds
    the text statistics features (length, readability, sentiment) to a text dataset."""
    from models.training.runner import run_training
    from monitoring.policy import policy_for

    end = _parse(end_date)
    outcome = run_training(dataset, trials=trials, optimize=optimize, algorithms=algorithms,
                           start_date=(end - timedelta(days=window_days - 1)).isoformat(),
                           end_date=end.isoformat(), text_stats=text_stats,
                           review_error_rate=policy_for(dataset).review_error_rate)
    return outcome.model_version


@flow(name="score-file", log_prints=True)
def score_file(dataset: str, file: str, out: str, chunk_rows: int = 50_000) -> dict[str, Any]:
    """Batch scoring of a file with the dataset's champion (rejects beside the output)."""
    from models.serving.batch import score_file as score

    result = score(dataset, Path(file), Path(out), chunk_rows=chunk_rows, progress=False)
    print(f"{result.scored} rows scored by {result.model_version} into {result.output}; "
          f"{result.rejected} rejected")
    return {"model_version": result.model_version, "scored": result.scored,
            "rejected": result.rejected, "output": str(result.output),
            "rejects": str(result.rejects) if result.rejects else None}


def demo_timeline_path() -> str:
    return str(DEMO_TIMELINE)
