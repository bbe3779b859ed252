"""Live progress of long commands: the trials and branches of `overnight train` read from
Metaflow's task lines (with the lines a real Optuna study prints), and the demo's row per
night and dataset. The backfill that feeds a real night's events to the observer is in
tests/system/test_nightly.py (its fixture already runs one)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from itertools import chain

import pytest
from rich.console import Console

from models.data.generators import customer
from models.learning.catalogue import build_model
from models.learning.fit import split_data
from models.learning.tuning import tune
from orchestration.demo import NightProgress
from orchestration.night import DatasetNight, _safe
from orchestration.summary import progress_line
from orchestration.train_progress import TRIAL, TrainingProgress, TrainingState

# task lines as `overnight train -v --trials 4 --algorithms logistic_regression,random_forest,
# dummy` printed them (a real run of 2026-12-02; three branches, two at a time; the split is
# part of `start` since the flow lost its pass-through steps)
RUN = "2026-12-02 07:4{}.000 [1796197364128107/{} (pid {})] {}"
LINES = [
    ("2:44", "end/0", 32700, "Task finished successfully."),     # a previous run's tail
    ("2:51", "start/1", 32745, "Task is starting."),
    ("2:57", "start/1", 32745, "Foreach yields 3 child steps."),
    ("2:57", "start/1", 32745, "Task finished successfully."),
    ("2:57", "train/3", 302, "Task is starting."),
    ("2:57", "train/4", 303, "Task is starting."),
    ("3:09", "train/3", 302, "logistic_regression: trial 1/4 done (best macro F1 0.892)"),
    ("3:10", "train/3", 302, "logistic_regression: trial 2/4 done (best macro F1 0.892)"),
    ("3:10", "train/3", 302, "logistic_regression: trial 3/4 done (best macro F1 0.892)"),
    ("3:10", "train/3", 302, "logistic_regression: trial 4/4 done (best macro F1 0.892)"),
    ("3:14", "train/4", 303, "random_forest: trial 1/4 done (best macro F1 0.865)"),
    ("3:16", "train/4", 303, "random_forest: trial 2/4 done (best macro F1 0.865)"),
    ("3:16", "train/3", 302, "Task finished successfully."),
    ("3:16", "train/5", 414, "Task is starting."),
    ("3:17", "train/4", 303, "random_forest: trial 3/4 done (best macro F1 0.865)"),
    ("3:26", "train/5", 414, "dummy: trial 1/1 done (best macro F1 0.224)"),
    ("3:30", "train/5", 414, "Task finished successfully."),
    ("3:34", "train/4", 303, "Task finished successfully."),      # its time budget: 3 of 4
    ("3:34", "join/6", 514, "Task is starting."),
]


def _feed(state: TrainingState, upto: int) -> str:
    for when, task, pid, message in LINES[:upto]:
        state.feed(RUN.format(when, task, pid, message))
    return state.describe()


def test_trials_are_counted_across_branches_out_of_the_total() -> None:
    state = TrainingState(trials_per_branch=4)
    assert _feed(state, 3) == ("reading and splitting the window "
                               "(branches 0/3, trials 0/12 done)")
    assert _feed(state, 10) == "training the candidates (branches 0/3, trials 4/12 done)"
    # a finished branch counts what it did; one not heard from yet, the trials asked for
    assert _feed(state, 13) == "training the candidates (branches 1/3, trials 6/12 done)"
    # the dummy has nothing to tune: its one trial replaces the four it was counted for
    assert _feed(state, 16) == "training the candidates (branches 1/3, trials 8/9 done)"
    assert _feed(state, 17) == "training the candidates (branches 2/3, trials 8/9 done)"
    # a branch stopped early (time budget) leaves the total at what was done
    assert _feed(state, len(LINES)) == (
        "ranking, reporting and registering the winner (branches 3/3, trials 8/8 done)")


def test_trials_total_without_the_asked_number_and_without_tuning() -> None:
    state = TrainingState()                   # the count asked for is not known here
    assert _feed(state, 5) == "training the candidates (branches 0/3 done)"
    assert _feed(state, 7) == "training the candidates (branches 0/3, trials 1/12 done)"
    untuned = TrainingState()                 # --no-optimize: no trial lines at all
    for index in (2, 4, 12):                  # the foreach, a branch starts and finishes
        untuned.feed(RUN.format(*LINES[index]))
    assert untuned.describe() == "training the candidates (branches 1/3 done)"


def test_a_retried_branch_counts_its_new_attempt() -> None:
    state = TrainingState(trials_per_branch=3)
    state.feed(RUN.format("1:00", "start/1", 1, "Foreach yields 1 child steps."))
    for k in (1, 2, 1):                       # the second attempt starts again from 1
        state.feed(RUN.format("1:01", "train/3", 2, f"svm: trial {k}/3 done (no score yet)"))
    assert (state.trials_done, state.trials_total) == (1, 3)


def test_the_log_gets_a_line_per_stage_or_branch_not_per_trial() -> None:
    out = io.StringIO()
    progress = TrainingProgress("customer", Console(file=out, width=200), trials=4)
    with progress:
        for when, task, pid, message in LINES:
            progress.on_line(RUN.format(when, task, pid, message))
    printed = out.getvalue().splitlines()
    assert printed[-1] == ("training customer: ranking, reporting and registering the "
                           "winner (branches 3/3, trials 8/8 done)")
    assert "training customer: training the candidates (branches 1/3, trials 6/12 done)" in (
        printed)
    assert not any("trials 5/" in line for line in printed)       # no line per trial
    assert not any("random_forest: trial" in line for line in printed)   # only --verbose


@pytest.fixture(scope="module")
def small_split():
    return split_data(customer.generate(date(2026, 8, 1), 300, 1), customer.SPEC, seed=0)


def test_tuning_prints_a_line_per_finished_trial_in_the_counted_format(small_split) -> None:
    lines: list[str] = []
    result = tune(customer.SPEC, small_split.x_train, small_split.y_train, "logistic_regression",
                  lambda p: build_model(customer.SPEC, "logistic_regression", p), trials=3,
                  folds=2, on_trial=lines.append)
    assert len(lines) == result.n_trials == 3
    assert lines[0].startswith("logistic_regression: trial 1/3 done (best macro F1 0.")
    assert [TRIAL.search(line)["done"] for line in lines] == ["1", "2", "3"]
    assert lines[-1].endswith(f"(best macro F1 {result.best_score:.3f})")


def test_tuning_lines_reach_stdout_unless_silenced(small_split, capsys) -> None:
    def make(p):
        return build_model(customer.SPEC, "dummy", p)

    tune(customer.SPEC, small_split.x_train, small_split.y_train, "dummy", make, folds=2)
    assert capsys.readouterr().out.startswith("dummy: trial 1/1 done (best macro F1 ")
    tune(customer.SPEC, small_split.x_train, small_split.y_train, "dummy", make, folds=2,
         on_trial=None)
    assert capsys.readouterr().out == ""


def _night(dataset: str) -> Iterator[tuple[DatasetNight, str]]:
    """The events a night sends its observer, one mutable row filled in between them as
    `run_dataset_night` does."""
    row = DatasetNight(night="2026-11-17", dataset=dataset)
    yield row, "start"
    for stage, found in [("ingest", {"batch_id": "b1", "batch_status": "accepted"}),
                         ("monitor", {"share_drifted": 0.12, "dataset_drift": False}),
                         ("decide", {"retrain": True, "reason": "drift"}),
                         ("train", {"challenger": f"{dataset}-v2"}),
                         ("promote", {"promoted": True, "gate": "passed (score 0.80)"})]:
        row.stages[stage] = "ok"
        vars(row).update(found)
        yield row, stage
    row.champion = f"{dataset}-v2"
    yield row, "done"


def test_progress_line_says_what_each_stage_found() -> None:
    row = list(_night("customer"))[-1][0]
    assert progress_line(row, 41.2, done=True) == (
        "2026-11-17 customer   ingest ✓  drift 12% ✓  decide: retrain  train ✓ customer-v2  "
        "gate: promoted  champion customer-v2  (41 s)")
    failed = DatasetNight(night="2026-11-17", dataset="medical",
                          stages={"ingest": "ok", "monitor": "failed"}, failed_stage="monitor",
                          champion="medical-v1")
    assert progress_line(failed, 3, done=True) == (
        "2026-11-17 medical    ingest ✓  drift ✗ failed  champion medical-v1  (3 s)")
    again = DatasetNight(night="2026-11-16", dataset="news", stages={"ingest": "ok"},
                         reason="No retrain (already done)")
    assert progress_line(again, done=True).endswith("(already done)")


def test_night_progress_prints_one_line_per_finished_night_off_a_terminal() -> None:
    out = io.StringIO()
    progress = NightProgress(Console(file=out, width=200))
    with progress:
        for row, event in chain(_night("customer"), _night("news")):
            progress.observe(row, event)
            if event != "done":
                assert progress.current is not None and progress.current[0] is row
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["customer", "news"]
    assert all("gate: promoted" in line and line.endswith(" s)") for line in lines)


def test_night_progress_on_a_terminal_keeps_the_finished_rows() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=True, color_system=None)
    with NightProgress(console) as progress:
        for row, event in _night("customer"):
            progress.observe(row, event)
            if event == "decide":             # the live row fills in as stages finish
                live = progress.__rich__().text.plain
                assert "drift 12% ✓  decide: retrain  train …  (" in live
    assert "champion customer-v2" in out.getvalue()


def test_a_broken_observer_cannot_stop_a_night() -> None:
    def broken(row: DatasetNight, event: str) -> None:
        raise RuntimeError("display gone")

    _safe(broken)(DatasetNight(night="2026-11-17", dataset="customer"), "start")   # no raise
