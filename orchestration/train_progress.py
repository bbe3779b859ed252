"""Live progress of `overnight train`: the stage, the branches and Optuna trials done out of
the total and the elapsed time, read from the task lines Metaflow writes (which are shown only
with --verbose); each branch's tuning prints a line per finished trial (`models.learning.tuning`).

Why from Metaflow's lines: they are already there, cost nothing to read, and say when each
step's task starts and finishes and how many branches the foreach yields; asking Metaflow's
client for the run's tasks instead would poll its datastore while the flow writes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column

TASK_LINE = re.compile(r"\[(?P<run>[^/\]\s]+)/(?P<step>[A-Za-z_]\w*)/(?P<task>[^\s\]]+)"
                       r"(?: \(pid \d+\))?\] (?P<message>.*)$")
FOREACH = re.compile(r"Foreach yields (?P<n>\d+) child steps")
TRIAL = re.compile(r"\btrial (?P<done>\d+)/(?P<planned>\d+) done\b")
STAGES = {"start": "reading and splitting the window", "train": "training the candidates",
          "join": "ranking, reporting and registering the winner", "end": "finishing"}
BRANCH_STEP = "train"


@dataclass
class TrainingState:
    """What the task lines told so far: the current stage, the branches done and the trials
    done; `trials_per_branch` is what was asked for (None: not tuning, or not known)."""

    stage: str = "starting Metaflow"
    branches_total: int | None = None
    branches_done: int = 0
    finished_tasks: set[str] = field(default_factory=set)
    trials_per_branch: int | None = None
    trials: dict[str, tuple[int, int]] = field(default_factory=dict)  # task: (done, planned)

    def feed(self, line: str) -> bool:
        """Read one line; True when the state changed."""
        match = TASK_LINE.search(line)
        if match is None:
            return False
        step, message = match["step"], match["message"]
        task = f"{match['run']}/{step}/{match['task']}"
        before = self.describe()
        if message.startswith("Task is starting"):
            self.stage = STAGES.get(step, step)
        elif message.startswith("Task finished successfully") and step == BRANCH_STEP:
            if task not in self.finished_tasks:
                self.finished_tasks.add(task)
                self.branches_done += 1
        elif (found := FOREACH.search(message)) is not None:
            self.branches_total = int(found["n"])
        elif step == BRANCH_STEP and (trial := TRIAL.search(message)) is not None:
            # the latest line of a branch counts (a retried branch starts again from 1)
            self.trials[task] = (int(trial["done"]), int(trial["planned"]))
        return self.describe() != before

    @property
    def trials_done(self) -> int:
        return sum(done for done, _planned in self.trials.values())

    @property
    def trials_total(self) -> int | None:
        """All trials the run will make: a finished branch counts what it did (its time
        budget may stop it early), a tuning one what it plans, one not heard from yet the
        trials asked for; None while that is not known."""
        counted = sum(done if task in self.finished_tasks else planned
                      for task, (done, planned) in self.trials.items())
        unheard = (self.branches_total or 0) - len(self.finished_tasks | set(self.trials))
        if unheard <= 0:
            return counted
        per_branch = self.trials_per_branch or max(
            (planned for _done, planned in self.trials.values()), default=None)
        return None if per_branch is None else counted + unheard * per_branch

    def describe(self) -> str:
        if self.branches_total is None:
            return self.stage
        counts = f"branches {self.branches_done}/{self.branches_total}"
        if self.trials or self.trials_per_branch:
            total = self.trials_total
            counts += f", trials {self.trials_done}" + ("" if total is None else f"/{total}")
        return f"{self.stage} ({counts} done)"

    def milestone(self) -> tuple[str, int, int | None]:
        """The stage and branch counts: what a log gets a line for (not every trial)."""
        return self.stage, self.branches_done, self.branches_total


class TrainingProgress:
    """A spinner with the stage, counts and elapsed time on a terminal, one line per new stage
    or finished branch elsewhere (logs, CI); Metaflow's own lines are printed above it only
    when `verbose`. `trials` is the number asked per branch when tuning (None otherwise)."""

    def __init__(self, dataset: str, console: Console, *, verbose: bool = False,
                 trials: int | None = None) -> None:
        self.dataset = dataset
        self.console = console
        self.verbose = verbose
        self.state = TrainingState(trials_per_branch=trials)
        self.live = console.is_terminal
        # the clock before the text: on a narrow terminal the text is what gets cut
        self.progress = Progress(SpinnerColumn(), TimeElapsedColumn(Column(min_width=7)),
                                 TextColumn("{task.description}", markup=False,
                                            table_column=Column(no_wrap=True,
                                                                overflow="ellipsis")),
                                 console=console, transient=True)
        self.task = self.progress.add_task(self._text(), total=None)
        self.printed = self.state.milestone()

    def _text(self) -> str:
        return f"training {self.dataset}: {self.state.describe()}"

    def __enter__(self) -> TrainingProgress:
        if self.live:
            self.progress.start()
        else:
            self.console.print(self._text(), markup=False, highlight=False)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.live:
            self.progress.stop()

    def on_line(self, line: str) -> None:
        """Metaflow wrote `line`: show it if verbose, update the stage if it says one."""
        if self.verbose:
            self.console.print(line, markup=False, highlight=False)
        if not self.state.feed(line):
            return
        if self.live:
            self.progress.update(self.task, description=self._text())
        elif self.state.milestone() != self.printed:
            self.printed = self.state.milestone()
            self.console.print(self._text(), markup=False, highlight=False)
