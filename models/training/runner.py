"""Run the training flow from Python with `metaflow.Runner` (what `overnight train` and the
nightly Prefect task call), keeping Metaflow's datastore under the data home.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from warehouse import get_settings
from warehouse.errors import OvernightError

FLOW_FILE = Path(__file__).with_name("flow.py")


class TrainingRunError(OvernightError):
    """The training flow ran and failed; the message says which step and why."""


@dataclass(frozen=True)
class TrainingOutcome:
    pathspec: str
    model_version: str
    seconds: float


def metaflow_env() -> dict[str, str]:
    """Environment of a flow run: the datastore under the data home and a user name."""
    settings = get_settings()
    return {
        "OVERNIGHT_HOME": str(settings.home),
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(settings.metaflow_dir),
        "USERNAME": os.environ.get("USERNAME") or os.environ.get("USER") or "overnight",
    }


def import_metaflow() -> ModuleType:
    """Metaflow, imported without changing `typing` for the rest of the process.

    Metaflow vendors typing_extensions, and importing it replaces `typing._collect_parameters`
    with a copy that compares type-parameter defaults against its own `NoDefault` sentinel.
    A generic class built afterwards over the real typing_extensions' ParamSpec then fails:
    Prefect's flow engine, imported when a process's first flow runs after a training, raised
    "Type parameter ~R without a default follows type parameter with a default". The
    original function is put back once metaflow and its vendored copy are imported (a module
    runs once, so the swap cannot happen again later).
    """
    import typing

    original = typing._collect_parameters  # type: ignore[attr-defined]
    import metaflow
    import metaflow._vendor.typing_extensions  # (the swap happens here)

    typing._collect_parameters = original  # type: ignore[attr-defined]
    return metaflow


def default_workers() -> int:
    """Parallel branches by default: one per core. Each branch limits its native thread pools
    to the flow's `n_jobs` (1), so one branch per core keeps every core busy without
    oversubscribing it."""
    return max(os.cpu_count() or 1, 1)


def run_training(dataset: str, *, show_output: bool = False, max_workers: int | None = None,
                 on_line: Callable[[str], None] | None = None,
                 **params: Any) -> TrainingOutcome:
    """Run TrainingFlow for one dataset and return its pathspec and registered version.

    `params` are the flow's parameters by name (trials, optimize, algorithms, seed, ...).
    `max_workers` is Metaflow's number of tasks run at once (None: one per core).
    With `on_line`, each line Metaflow writes (its task lines, on stdout or stderr) is handed
    to it as it comes, instead of printed: the command line draws progress from them and
    shows them only when asked (`--verbose`).
    """
    from models.training.steps import load_window

    Runner = import_metaflow().Runner

    load_window(dataset, params.get("start_date"), params.get("end_date"))  # fail fast, clearly
    max_workers = max_workers or default_workers()
    settings = get_settings()
    settings.ensure_dirs()
    env = metaflow_env()
    os.environ.update(env)             # the client below reads the same datastore
    runner = Runner(str(FLOW_FILE), show_output=show_output, env=env, cwd=str(settings.home))
    if on_line is not None:
        return asyncio.run(_run_streaming(runner, dataset, on_line,
                                          {"max_workers": max_workers, **params}))
    with runner.run(dataset=dataset, max_workers=max_workers, **params) as running:
        return _outcome(running, dataset)


async def _run_streaming(runner: Any, dataset: str, on_line: Callable[[str], None],
                         params: dict[str, Any]) -> TrainingOutcome:
    """The run launched without blocking, its output lines streamed to `on_line`."""
    async with runner:
        running = await runner.async_run(dataset=dataset, **params)

        async def pump(stream: str) -> None:
            async for _position, line in running.stream_log(stream):
                on_line(line)

        await asyncio.gather(pump("stdout"), pump("stderr"), running.wait())
        return _outcome(running, dataset)


def _outcome(running: Any, dataset: str) -> TrainingOutcome:
    """The finished run's pathspec and registered version, or its failure as one line."""
    namespace = import_metaflow().namespace
    run = running.run
    if run is None or not run.successful:
        raise TrainingRunError(_failure(running, dataset))
    namespace(None)
    finished = run.finished_at or run.created_at
    return TrainingOutcome(pathspec=run.pathspec, model_version=run.data.model_version,
                           seconds=(finished - run.created_at).total_seconds())


TASK_PREFIX = re.compile(r"^(?:\d{4}-\d\d-\d\d [\d:.]+ )?(?:\[[^/\]\s]+/(?P<step>\w+)/[^\]]*\] )?")
EXCEPTION = re.compile(r"^(?:[\w.]+\.)?(?P<name>\w*(?:Error|Exception)): (?P<message>.+)$")


def _failure(running: Any, dataset: str) -> str:
    """One readable line about why a run failed: the exception a step raised, with its step
    (Metaflow's task lines are hidden unless --verbose), else the last error line it wrote."""
    text = (running.stderr or "") + (running.stdout or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        prefix = TASK_PREFIX.match(line)
        rest = line[prefix.end():] if prefix else line
        raised = EXCEPTION.match(rest)
        if raised:
            step = f" in step {prefix['step']}" if prefix and prefix["step"] else ""
            return (f"training of {dataset!r} failed{step}: "
                    f"{raised['name']}: {raised['message'][-400:]}")
    errors = [line for line in lines if "Error" in line or "failed" in line.lower()]
    detail = errors[-1] if errors else (lines[-1] if lines else "no output")
    return f"training of {dataset!r} failed: {detail[-400:]}"
