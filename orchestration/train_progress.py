"""Live progress of `overnight train`: the stage, the branches done out of the total and the
elapsed time, read from the task lines Metaflow writes (which are shown only with --verbose).

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

TASK_LINE = re.compile(r"\[(?P<run>[^/\]\s]+)/(?P<step>[A-Za-z_]\w*)/(?P<task>[^\s\]]+)"
                       r"(?: \(pid \d+\))?\] (?P<message>.*)$")
FOREACH = re.compile(r"Foreach yields (?P<n>\d+) child steps")
STAGES = {"start": "reading the window", "split": "splitting the data",
          "train": "training the candidates", "join": "ranking and registering the winner",
          "report": "writing the model report", "end": "finishing"}
BRANCH_STEP = "train"


@dataclass
class TrainingState:
    """What the task lines told so far: the current stage and the branches done."""

    stage: str = "starting Metaflow"
    branches_total: int | None = None
    branches_done: int = 0
    finished_tasks: set[str] = field(default_factory=set)

    def feed(self, line: str) -> bool:
        """Read one line; True when the state changed."""
        match = TASK_LINE.search(line)
        if match is None:
            return False
        step, message = match["step"], match["message"]
        before = self.describe()
        if message.startswith("Task is starting"):
            self.stage = STAGES.get(step, step)
        elif message.startswith("Task finished successfully") and step == BRANCH_STEP:
            task = f"{match['run']}/{step}/{match['task']}"
            if task not in self.finished_tasks:
                self.finished_tasks.add(task)
                self.branches_done += 1
        elif (found := FOREACH.search(message)) is not None:
            self.branches_total = int(found["n"])
        return self.describe() != before

    def describe(self) -> str:
        if self.branches_total is None:
            return self.stage
        return f"{self.stage} (branches {self.branches_done}/{self.branches_total} done)"


class TrainingProgress:
    """A spinner with the stage and elapsed time on a terminal, one line per change elsewhere
    (logs, CI); Metaflow's own lines are printed above it only when `verbose`."""

    def __init__(self, dataset: str, console: Console, *, verbose: bool = False) -> None:
        self.dataset = dataset
        self.console = console
        self.verbose = verbose
        self.state = TrainingState()
        self.live = console.is_terminal
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task = self.progress.add_task(self._text(), total=None)

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
        else:
            self.console.print(self._text(), markup=False, highlight=False)
