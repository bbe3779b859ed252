"""The one obvious path for a user's own table: `overnight ingest`, `overnight train --promote`,
`overnight predict`, through the real command line (one real Metaflow run); the live progress
drawn from Metaflow's task lines; and `overnight board` starting with nobody to answer a prompt.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from orchestration.cli import train_next_steps
from orchestration.train_progress import TrainingState
from tests.support.servers import free_port, stop, wait_until_up

OVERNIGHT = str(Path(sys.executable).parent / "overnight")
DATASET = "my_table"


def overnight(*args: str, env: dict[str, str], timeout: float = 300
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OVERNIGHT, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def _table(rows: int = 240) -> pd.DataFrame:
    """A small three-class table, as a user would bring one (names with a space, a category)."""
    x, y = make_classification(n_samples=rows, n_features=5, n_informative=3, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, class_sep=1.6,
                               weights=[0.5, 0.3, 0.2], random_state=4)
    frame = pd.DataFrame(x, columns=[f"measure {i}" for i in range(5)])
    frame["site"] = np.random.default_rng(4).choice(["north", "south"], rows)
    frame["outcome"] = np.array(["stay", "upgrade", "leave"])[y]
    return frame


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A fresh data home: the table ingested, then trained with --promote (one Metaflow run)."""
    root = tmp_path_factory.mktemp("train_promote")
    env = {**os.environ, "OVERNIGHT_HOME": str(root / "home")}
    table = _table()
    table.to_csv(root / "table.csv", index=False)
    table.drop(columns="outcome").head(30).to_csv(root / "new.csv", index=False)
    ingest = overnight("ingest", "--dataset", DATASET, "--file", str(root / "table.csv"),
                       "--target", "outcome", env=env)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    train = overnight("train", "--dataset", DATASET, "--promote", "--no-optimize",
                      "--algorithms", "logistic_regression", "--cv-folds", "2", env=env,
                      timeout=600)
    yield {"root": root, "env": env, "train": train}


@pytest.mark.slow
def test_train_promote_leaves_a_champion_that_predict_uses(promoted) -> None:
    train, env, root = promoted["train"], promoted["env"], promoted["root"]
    assert train.returncode == 0, train.stdout + train.stderr[-3000:]
    out = train.stdout
    assert f"registered {DATASET}-v1 as challenger of {DATASET}" in out
    assert f"{DATASET}-v1: PASSED" in out
    assert "[ok ] baseline: accuracy" in out and "for always predicting 'stay'" in out
    assert f"no targets declared for {DATASET}" in out
    assert f"{DATASET}: champion (none) -> {DATASET}-v1" in out
    assert out.rstrip().endswith(f"next: overnight predict --dataset {DATASET} --file IN.csv "
                                 "--out OUT.csv")
    scored = overnight("predict", "--dataset", DATASET, "--file", str(root / "new.csv"),
                       "--out", str(root / "scored.csv"), env=env)
    assert scored.returncode == 0, scored.stderr
    assert f"30 rows scored by {DATASET}-v1" in scored.stdout
    predictions = pd.read_csv(root / "scored.csv")
    assert len(predictions) == 30
    assert set(predictions["predicted_class"]) <= {"stay", "upgrade", "leave"}


@pytest.mark.slow
def test_training_shows_progress_and_hides_metaflow_lines(promoted) -> None:
    train = promoted["train"]
    assert "training my_table: training the candidates (branches 0/1 done)" in train.stderr
    assert ("training my_table: ranking, reporting and registering the winner (branches 1/1 "
            "done)") in train.stderr
    assert "Task is starting" not in train.stdout + train.stderr     # only with --verbose


@pytest.mark.slow
def test_train_without_promote_prints_the_exact_next_commands(promoted) -> None:
    lines = train_next_steps(DATASET, f"{DATASET}-v1")
    assert lines[0] == f"next: overnight validate --dataset {DATASET} --version {DATASET}-v1"
    assert lines[1] == (f"then: overnight promote --dataset {DATASET} --version {DATASET}-v1"
                        " --reason 'passed the gate'")
    # the printed command is a working command line as it stands: it runs the gate on v1
    command = shlex.split(lines[0].removeprefix("next: "))
    assert command[0] == "overnight"
    validated = overnight(*command[1:], env=promoted["env"])
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.startswith(f"{DATASET}-v1: ") and "] baseline: " in validated.stdout
    assert shlex.split(lines[1].removeprefix("then: "))[-1] == "passed the gate"
    awkward = train_next_steps("it's mine", "v1")[0]
    assert shlex.split(awkward)[4] == "it's mine"                    # quoted for a shell


def test_progress_reads_metaflow_task_lines() -> None:
    state = TrainingState()
    lines = ["2026-12-02 05:01:00.000 Workflow starting (run-id 17):",
             "2026-12-02 05:01:01.000 [17/start/1 (pid 10)] Task is starting.",
             "2026-12-02 05:01:02.000 [17/split/2 (pid 11)] Task is starting.",
             "2026-12-02 05:01:03.000 [17/split/2 (pid 11)] Foreach yields 3 child steps.",
             "2026-12-02 05:01:04.000 [17/train/3 (pid 12)] Task is starting.",
             "2026-12-02 05:01:05.000 [17/train/3 (pid 12)] Task finished successfully.",
             "2026-12-02 05:01:05.000 [17/train/3 (pid 12)] Task finished successfully.",
             "2026-12-02 05:01:06.000 [17/train/4 (pid 13)] Task finished successfully."]
    changed = [state.feed(line) for line in lines]
    assert changed == [False, True, True, True, True, True, False, True]
    assert state.describe() == "training the candidates (branches 2/3 done)"


@pytest.mark.slow
def test_board_starts_on_a_fresh_machine_without_a_prompt(tmp_path: Path) -> None:
    """No ~/.streamlit, a browser wanted (no --headless) and nobody at standard input: the
    board must serve anyway (Streamlit's first-run e-mail prompt would wait forever)."""
    port = free_port()
    fresh = tmp_path / "user"
    fresh.mkdir()
    env = {**os.environ, "HOME": str(fresh), "OVERNIGHT_HOME": str(tmp_path / "home"),
           "BROWSER": "true"}                                      # no real browser opens
    for key in [k for k in env if k.startswith("STREAMLIT_")]:
        env.pop(key)
    with (tmp_path / "board.log").open("w") as log:
        process = subprocess.Popen([OVERNIGHT, "board", "--port", str(port)], env=env,
                                   stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/_stcore/health", process, timeout=90)
    finally:
        stop(process, timeout=20)
    text = (tmp_path / "board.log").read_text()
    assert "Email" not in text, text
    assert not (fresh / ".streamlit" / "credentials.toml").exists()


def test_a_failed_run_is_one_line_naming_the_step_and_the_exception() -> None:
    from types import SimpleNamespace

    from models.training.runner import _failure

    log = SimpleNamespace(stdout="", stderr="\n".join([
        "2026-12-02 05:24:26.805 [17/start/1 (pid 3)] Traceback (most recent call last):",
        "2026-12-02 05:24:26.805 [17/start/1 (pid 3)] raise UnknownAlgorithmError(",
        "2026-12-02 05:24:26.805 [17/start/1 (pid 3)] "
        "models.learning.catalogue.UnknownAlgorithmError: unknown algorithm 'bogus' "
        "for tabular data",
        "2026-12-02 05:24:26.806 [17/start/1 (pid 3)] Task failed.",
        "2026-12-02 05:24:26.806 Workflow failed."]))
    assert _failure(log, "wine") == ("training of 'wine' failed in step start: "
                                     "UnknownAlgorithmError: unknown algorithm 'bogus' for "
                                     "tabular data")
    assert _failure(SimpleNamespace(stdout="", stderr="Workflow failed."), "wine") == (
        "training of 'wine' failed: Workflow failed.")
