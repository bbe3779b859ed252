"""`overnight train`, `validate`, `promote`, `rollback` and `registry sign`: a dataset's
candidates trained by the Metaflow flow, judged by the validation gate, and switched in (or
back) as champion in the registry."""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer

from models.data.dates import parse_date
from orchestration.cli.common import FormatOption, err, init_warehouse
from orchestration.cli.output import OutputFormat, print_frame
from warehouse import OvernightError, get_settings

if TYPE_CHECKING:
    from monitoring.gate import GateResult

commands = typer.Typer()
registry_app = typer.Typer(help="The model registry: sign what is registered.",
                           no_args_is_help=True)


@commands.command()
def train(
    dataset: Annotated[str, typer.Option(help="Dataset to train.")],
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials per algorithm.")] = 20,
    optimize: Annotated[bool, typer.Option(help="Tune hyper-parameters with Optuna.")] = True,
    algorithms: Annotated[str, typer.Option(
        help="Comma-separated algorithms ('' = chosen for the data).")] = "",
    imbalance: Annotated[str, typer.Option(help="Imbalance strategy ('' = per dataset).")] = "",
    text_stats: Annotated[bool, typer.Option(
        help="Text datasets: add length, readability and sentiment features.")] = False,
    start_date: Annotated[str, typer.Option(help="First batch date of the window.")] = "",
    end_date: Annotated[str, typer.Option(help="Last batch date of the window.")] = "",
    cv_folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 3,
    time_budget: Annotated[float, typer.Option(help="Tuning seconds per algorithm.")] = 120.0,
    max_workers: Annotated[int | None, typer.Option(
        min=1, help="Parallel branches (default: one per core).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default OVERNIGHT_SEED).")] = None,
    promote: Annotated[bool, typer.Option(
        "--promote", help="Then run the validation gate and promote the new model if it "
        "passes (exit code 1 and the reasons if it does not).")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Show Metaflow's own task lines.")] = False,
    quiet: Annotated[bool, typer.Option(help="No live progress (results only).")] = False,
) -> None:
    """Train a dataset's candidates with the Metaflow flow and register the best as
    challenger; with --promote, validate it and make it the champion when the gate passes."""
    from models.training.runner import run_training
    from monitoring.policy import policy_for
    from orchestration.train_progress import TrainingProgress

    for value, option in ((start_date, "--start-date"), (end_date, "--end-date")):
        parse_date(value or None, option)
    params: dict[str, Any] = {"trials": trials, "optimize": optimize, "algorithms": algorithms,
              "imbalance": imbalance, "start_date": start_date, "end_date": end_date,
              "text_stats": text_stats,
              "cv_folds": cv_folds, "time_budget": time_budget,
              "seed": get_settings().seed if seed is None else seed,
              "review_error_rate": policy_for(dataset).review_error_rate}
    if quiet and not verbose:
        outcome = run_training(dataset, max_workers=max_workers, on_line=lambda _line: None,
                               **params)
    else:
        with TrainingProgress(dataset, err, verbose=verbose,
                              trials=trials if optimize else None) as progress:
            outcome = run_training(dataset, max_workers=max_workers, on_line=progress.on_line,
                                   **params)
    version = outcome.model_version
    print(f"{outcome.pathspec}: registered {version} as challenger of {dataset} "
          f"({outcome.seconds:.0f} s)")
    print(f"  leaderboard: overnight report leaderboard -p run={outcome.pathspec}")
    if promote:
        _validate_and_promote(dataset, version)
        return
    for line in train_next_steps(dataset, version):
        print(line)


def train_next_steps(dataset: str, version: str) -> list[str]:
    """What `train` without --promote ends with: the exact commands that come next."""
    quoted = f"--dataset {shlex.quote(dataset)} --version {shlex.quote(version)}"
    return [f"next: overnight validate {quoted}",
            f"then: overnight promote {quoted} --reason 'passed the gate'",
            "  (or train with --promote to validate and promote in one go)"]


def _print_verdict(version: str, result: GateResult) -> None:
    print(f"{version}: {'PASSED' if result.passed else 'REFUSED'} (score {result.score:.2f})")
    for check in result.checks:
        print(f"  [{'ok ' if check.passed else 'FAIL'}] {check.name}: {check.detail}")


def _validate_and_promote(dataset: str, version: str) -> None:
    """The gate on a new challenger, then its promotion; a refusal is exit code 1."""
    from monitoring.gate import promote_validated, validate

    result = validate(dataset, version)
    _print_verdict(version, result)
    if not result.passed:
        raise OvernightError(
            f"{version} was not promoted: the gate refused it ({'; '.join(result.reasons)})"
            f"{f'; {result.champion} stays champion' if result.champion else ''}")
    old = promote_validated(dataset, version, reason=f"passed the gate after `overnight "
                            f"train --promote` (score {result.score:.2f})", changed_by=_user())
    print(f"{dataset}: champion {old or '(none)'} -> {version}")
    print(f"next: overnight predict --dataset {shlex.quote(dataset)} --file IN.csv "
          f"--out OUT.csv")


@commands.command("validate")
def validate_command(
    dataset: Annotated[str, typer.Option(help="Dataset.")],
    version: Annotated[str | None, typer.Option(help="Model version (default: challenger).")]
    = None,
) -> None:
    """Run the validation gate on a challenger against the champion and record the verdict."""
    from models.registry.versions import get_alias
    from monitoring.gate import validate

    target = version or get_alias(dataset, "challenger")
    if target is None:
        raise OvernightError(f"dataset {dataset!r} has no challenger; give --version")
    _print_verdict(target, validate(dataset, target))


@commands.command()
def promote(
    dataset: Annotated[str, typer.Option(help="Dataset.")],
    version: Annotated[str, typer.Option(help="Model version with a passing validation.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the alias history).")],
) -> None:
    """Make a validated version the champion (the old one becomes `previous`)."""
    from monitoring.gate import promote_validated

    old = promote_validated(dataset, version, reason=reason, changed_by=_user())
    print(f"{dataset}: champion {old or '(none)'} -> {version}")


@commands.command()
def rollback(
    dataset: Annotated[str, typer.Option(help="Dataset.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the alias history).")],
) -> None:
    """Restore the previous champion in one atomic switch."""
    from models.registry.versions import rollback as registry_rollback

    restored = registry_rollback(dataset, reason=reason, changed_by=_user())
    print(f"{dataset}: champion restored to {restored}")


@registry_app.command("sign")
def registry_sign(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset's versions.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Sign the registered versions whose artifacts still match the warehouse's sha256 (once,
    for a home registered before signing; re-running changes nothing) and republish the
    serving manifest. A changed artifact is refused, never signed."""
    from models.registry.signing import key_file
    from models.registry.versions import sign_registered

    init_warehouse()
    outcomes = sign_registered(dataset)
    frame = pd.DataFrame([{"model_version": o.model_version, "status": o.status,
                           "detail": o.detail} for o in outcomes],
                         columns=["model_version", "status", "detail"])
    print_frame(frame, fmt)
    if fmt is OutputFormat.table and not get_settings().signing_key:
        print(f"signing key: {key_file()}")
    refused = [o.model_version for o in outcomes if o.status == "refused"]
    if refused:
        raise OvernightError(f"{len(refused)} version(s) not signed because their artifact is "
                             f"missing or changed: {', '.join(refused)}")


def _user() -> str:
    """Who changed an alias: the login name, else "cli"."""
    return os.environ.get("USER") or os.environ.get("USERNAME") or "cli"


commands.add_typer(registry_app, name="registry")
