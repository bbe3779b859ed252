"""The `overnight` command line: thin commands that parse options and call plain functions.

User mistakes (bad SQL, unknown report, a locked warehouse...) are printed as one line on
standard error with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import duckdb
import pandas as pd
import typer
from rich.console import Console

from models.data.batches import StoredBatch, generate_batch
from models.data.datasets import BUILTIN
from models.data.ingest import ingest_file
from models.data.scenarios import SCENARIOS, ScenarioError, load_timeline, single_scenario
from orchestration.demo import DEMO_NIGHTS, DEMO_START, NightProgress, run_demo
from orchestration.output import OutputFormat, print_frame
from warehouse import OvernightError, connect, get_settings, migrate
from warehouse.connection import connect_sandbox
from warehouse.reports import REPORTS, run_query, run_report, warehouse_status

if TYPE_CHECKING:
    from monitoring.gate import GateResult

app = typer.Typer(
    help="overnight: a scheduled batch MLOps platform (nightly data, drift, retraining, serving).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
warehouse_app = typer.Typer(help="Create and inspect the DuckDB warehouse.", no_args_is_help=True)
app.add_typer(warehouse_app, name="warehouse")
registry_app = typer.Typer(help="The model registry: sign what is registered.",
                           no_args_is_help=True)
app.add_typer(registry_app, name="registry")

err = Console(stderr=True, soft_wrap=True)

FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="How to print results.")
]


def init_warehouse() -> list[str]:
    """Create the data home folders and apply pending migrations; return what was applied."""
    settings = get_settings()
    settings.ensure_dirs()
    with connect() as con:
        return [f"{m.version}: {m.name}" for m in migrate(con)]


def print_locations() -> None:
    for name, path in get_settings().locations().items():
        print(f"  {name:<10} {path}")


@warehouse_app.command("init")
def warehouse_init() -> None:
    """Create the warehouse (or bring its schema up to date) and the data home folders."""
    applied = init_warehouse()
    print(f"applied migrations: {', '.join(applied)}" if applied else "schema already up to date")
    print_locations()


@warehouse_app.command("status")
def warehouse_status_command(fmt: FormatOption = OutputFormat.table) -> None:
    """Show the schema version, the tables and their row counts."""
    with connect(read_only=True) as con:
        status = warehouse_status(con)
    frame = pd.DataFrame(
        {"table": list(status["tables"]), "rows": list(status["tables"].values())}
    )
    if fmt is OutputFormat.table:
        print(f"warehouse {get_settings().warehouse_path}")
        print(f"schema version {status['schema_version']}")
    print_frame(frame, fmt)


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


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One read-only SQL statement (sandboxed).")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Run one read-only SQL statement (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) on the
    warehouse, in a sandbox without file access, and print its result."""
    with connect_sandbox() as con:
        frame = run_query(con, sql)
    print_frame(frame, fmt)


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="Report name; `overnight report list` lists them.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Report parameter as key=value (repeatable)."),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Print a named report (leaderboard, drift_trend, lineage...); `list` shows them all."""
    if name == "list":
        frame = pd.DataFrame(
            [{"report": r.name, "parameters": ", ".join(r.params), "what": r.description}
             for r in REPORTS.values()]
        )
        print_frame(frame, fmt)
        return
    params: dict[str, str] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OvernightError(f"report parameter {item!r} is not of the form key=value")
        params[key.strip()] = value
    with connect_sandbox() as con:
        frame = run_report(con, name, params)
    print_frame(frame, fmt, title=name)


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise OvernightError(f"{option} {value!r} is not a date of the form YYYY-MM-DD") from None


def print_batch(batch: StoredBatch) -> None:
    state = "already in the warehouse" if batch.already_present else batch.status
    print(f"{batch.batch_id}: {batch.n_rows} rows, {state}")
    if batch.reason:
        print(f"  quarantined because {batch.reason}")
    for check in batch.checks:
        mark = "ok " if check.passed else ("FAIL" if check.blocking else "warn")
        print(f"  [{mark}] {check.name}: {check.detail}")


@app.command()
def generate(
    dataset: Annotated[str, typer.Option(help=f"One of: {', '.join(BUILTIN)}.")],
    batch_date: Annotated[str, typer.Option("--date", help="Batch date, YYYY-MM-DD.")],
    rows: Annotated[int | None, typer.Option(min=1, help="Rows (default: dataset's own).")] = None,
    scenario: Annotated[str, typer.Option(
        help=f"A scenario name ({', '.join(SCENARIOS)}) or a timeline file (.yaml/.json).")
    ] = "stable",
    intensity: Annotated[float, typer.Option(
        min=0.0, max=1.5, help="Strength of a named scenario (1 = full).")] = 1.0,
    start: Annotated[str | None, typer.Option(
        help="Day 0 of a timeline file (default: the file's own start).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default OVERNIGHT_SEED).")] = None,
) -> None:
    """Generate one batch of a built-in dataset for a date and load it into the warehouse."""
    when = parse_date(batch_date, "--date")
    assert when is not None
    init_warehouse()
    if scenario in SCENARIOS:
        drift, label = single_scenario(scenario, intensity), scenario
    elif Path(scenario).suffix in (".yaml", ".yml", ".json"):
        timeline = load_timeline(scenario)
        if start is not None:
            timeline = timeline.with_start(parse_date(start, "--start") or when)
        drift, label = timeline.drift_for(dataset, when), timeline.label_for(dataset, when)
    else:
        raise ScenarioError(
            f"--scenario {scenario!r} is neither a scenario ({', '.join(SCENARIOS)}) "
            "nor a .yaml/.json timeline file"
        )
    batch = generate_batch(dataset, when, n_rows=rows, drift=drift, scenario=label,
                           seed=get_settings().seed if seed is None else seed)
    print_batch(batch)


@app.command()
def ingest(
    dataset: Annotated[str, typer.Option(help="Dataset name (new or existing).")],
    file: Annotated[Path, typer.Option(help="A .csv (UTF-8) or .parquet file.")],
    target: Annotated[str | None, typer.Option(help="Target column (needed for a new dataset).")]
    = None,
    text_columns: Annotated[str | None, typer.Option(
        help="Comma-separated columns to treat as free text.")] = None,
    batch_date: Annotated[str | None, typer.Option(
        "--batch-date", help="Batch date, YYYY-MM-DD (default today).")] = None,
    spec: Annotated[Path | None, typer.Option(help="A dataset spec file (JSON) to use.")] = None,
) -> None:
    """Load a user's CSV or Parquet file as a batch (registering the dataset on first use).

    A refused file leaves the data home as it was: the warehouse is created only once the
    file is accepted as a batch."""
    columns = tuple(c.strip() for c in (text_columns or "").split(",") if c.strip())
    batch = ingest_file(dataset, file, target=target, text_columns=columns,
                        batch_date=parse_date(batch_date, "--batch-date"), spec_path=spec,
                        before_write=init_warehouse)
    print_batch(batch)


datasets_app = typer.Typer(help="List the datasets, or change a dataset's spec.")
app.add_typer(datasets_app, name="datasets")


@datasets_app.callback(invoke_without_command=True)
def datasets(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """List the datasets: built-in generators and registered ones, with their batches."""
    if ctx.invoked_subcommand is not None:
        return
    with connect(read_only=True) as con:
        frame = con.execute(
            "SELECT d.dataset, d.kind, d.source, count(b.batch_id) AS batches,"
            " count(b.batch_id) FILTER (WHERE b.status = 'quarantined') AS quarantined,"
            " max(b.batch_date) AS last_batch FROM datasets d"
            " LEFT JOIN batches b USING (dataset) GROUP BY ALL ORDER BY d.dataset"
        ).df()
    print_frame(frame, fmt, title="datasets")


@datasets_app.command("reset-spec")
def reset_spec_command(
    name: Annotated[str, typer.Argument(help="The dataset whose spec changes.")],
    spec: Annotated[Path | None, typer.Option(
        help="The new spec (JSON); without it the next accepted file's inferred spec is used.")
    ] = None,
) -> None:
    """Replace a dataset's spec (refused while a champion trained on the old one serves it).

    The new spec is the next revision: earlier batches stay for lineage and reports, but only
    batches ingested under the new spec are trained on."""
    from models.registry.versions.spec_change import change_spec

    print(change_spec(name, spec, before_write=init_warehouse))


@app.command()
def train(
    dataset: Annotated[str, typer.Option(help="Dataset to train.")],
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials per algorithm.")] = 20,
    optimize: Annotated[bool, typer.Option(help="Tune hyper-parameters with Optuna.")] = True,
    algorithms: Annotated[str, typer.Option(
        help="Comma-separated algorithms ('' = chosen for the data).")] = "",
    imbalance: Annotated[str, typer.Option(help="Imbalance strategy ('' = per dataset).")] = "",
    start_date: Annotated[str, typer.Option(help="First batch date of the window.")] = "",
    end_date: Annotated[str, typer.Option(help="Last batch date of the window.")] = "",
    cv_folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 3,
    time_budget: Annotated[float, typer.Option(help="Tuning seconds per algorithm.")] = 120.0,
    max_workers: Annotated[int, typer.Option(min=1, help="Parallel branches.")] = 2,
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
    from orchestration.train_progress import TrainingProgress

    for value, option in ((start_date, "--start-date"), (end_date, "--end-date")):
        parse_date(value or None, option)
    params: dict[str, Any] = {"trials": trials, "optimize": optimize, "algorithms": algorithms,
              "imbalance": imbalance, "start_date": start_date, "end_date": end_date,
              "cv_folds": cv_folds, "time_budget": time_budget,
              "seed": get_settings().seed if seed is None else seed}
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


def use_local_prefect() -> None:
    """Prefect's local API and state under the data home, unless the user chose a server."""
    from orchestration.prefect_env import prefect_home

    for key, value in prefect_home(get_settings().home).items():
        os.environ.setdefault(key, value)


@app.command()
def demo(
    nights: Annotated[int, typer.Option(min=1, help="Nights to simulate.")] = DEMO_NIGHTS,
    start: Annotated[str, typer.Option(help="First night, YYYY-MM-DD.")] = DEMO_START.isoformat(),
    rows: Annotated[int | None, typer.Option(min=50, help="Rows per batch (default: each "
                                             "dataset's own).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default OVERNIGHT_SEED).")] = None,
) -> None:
    """Run the main job on embedded defaults: a week of nights along the demo drift timeline."""
    applied = init_warehouse()
    if applied:
        print(f"warehouse created (migrations {', '.join(applied)})")
    first = parse_date(start, "--start")
    assert first is not None
    use_local_prefect()
    print(f"overnight demo: {nights} nights from {first} for customer, medical and news "
          "(Prefect nightly flow, Metaflow training, Evidently drift reports)...")
    started = time.perf_counter()
    with NightProgress(err) as progress:
        summary = run_demo(first, nights, get_settings().seed if seed is None else seed, rows,
                           observe=progress.observe)
    print_frame(summary, OutputFormat.table, title=f"overnight demo: {nights} nights")
    settings = get_settings()
    print(f"done in {time.perf_counter() - started:.0f} s. Where everything lives:")
    print_locations()
    print(f"  drift reports  {settings.reports_dir / 'drift'}")
    print(f"  model reports  {settings.reports_dir / 'models'}")
    print("next: `overnight report champion_history`, `overnight report decisions`, "
          "`overnight alerts`, `overnight report leaderboard`")


@app.command()
def nightly(
    night: Annotated[str | None, typer.Option(help="Night, YYYY-MM-DD (default today UTC).")]
    = None,
    dataset: Annotated[list[str] | None, typer.Option(help="Dataset (repeatable; default all "
                                                      "built-in).")] = None,
    timeline: Annotated[str | None, typer.Option(help="Drift timeline file for generated "
                                                 "data.")] = None,
    force_retrain: Annotated[bool, typer.Option(help="Retrain whatever the policy says.")]
    = False,
) -> None:
    """Run one night of the loop for the datasets, through the Prefect flow."""
    init_warehouse()
    parse_date(night, "--night")
    use_local_prefect()
    from orchestration.demo import summary_frame
    from orchestration.flows import nightly as nightly_flow

    rows = nightly_flow(night, dataset, timeline, None, get_settings().seed, None, force_retrain)
    print_frame(summary_frame(rows), OutputFormat.table, title="night")


@app.command()
def backfill(
    start: Annotated[str, typer.Option(help="First night, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last night, YYYY-MM-DD.")],
    dataset: Annotated[list[str] | None, typer.Option(help="Dataset (repeatable).")] = None,
    timeline: Annotated[str | None, typer.Option(help="Drift timeline file.")] = None,
) -> None:
    """Run the nightly loop for each night from start to end, in order (idempotent)."""
    init_warehouse()
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    assert first is not None and last is not None
    if last < first:
        raise OvernightError(f"--end {last} is before --start {first}")
    use_local_prefect()
    from orchestration.demo import summary_frame
    from orchestration.flows import backfill as backfill_flow

    with NightProgress(err) as progress:
        rows = backfill_flow(start, end, dataset, timeline, start, get_settings().seed,
                             observe=progress.observe)
    print_frame(summary_frame(rows), OutputFormat.table, title="backfill")


@app.command("validate")
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
    result = validate(dataset, target)
    print(f"{target}: {'PASSED' if result.passed else 'REFUSED'} (score {result.score:.2f})")
    for check in result.checks:
        print(f"  [{'ok ' if check.passed else 'FAIL'}] {check.name}: {check.detail}")


@app.command()
def promote(
    dataset: Annotated[str, typer.Option(help="Dataset.")],
    version: Annotated[str, typer.Option(help="Model version with a passing validation.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the alias history).")],
) -> None:
    """Make a validated version the champion (the old one becomes `previous`)."""
    from monitoring.gate import promote_validated

    old = promote_validated(dataset, version, reason=reason, changed_by=_user())
    print(f"{dataset}: champion {old or '(none)'} -> {version}")


@app.command()
def rollback(
    dataset: Annotated[str, typer.Option(help="Dataset.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the alias history).")],
) -> None:
    """Restore the previous champion in one atomic switch."""
    from models.registry.versions import rollback as registry_rollback

    restored = registry_rollback(dataset, reason=reason, changed_by=_user())
    print(f"{dataset}: champion restored to {restored}")


@app.command()
def alerts(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    severity: Annotated[str | None, typer.Option(help="info, warning or critical.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List open alerts, newest first."""
    from monitoring.alerts import open_alerts

    print_frame(open_alerts(dataset=dataset, severity=severity), fmt, title="open alerts")


@app.command()
def simulate(
    scenario: Annotated[Path, typer.Option(help="Drift timeline file (YAML or JSON).")],
    nights: Annotated[int, typer.Option(min=2, help="Nights to replay.")] = 14,
    dataset: Annotated[str, typer.Option(help="Built-in dataset to replay.")] = "customer",
    start: Annotated[str, typer.Option(help="Day 0 of the timeline, YYYY-MM-DD.")]
    = DEMO_START.isoformat(),
    rows: Annotated[int | None, typer.Option(min=50, help="Rows per night.")] = None,
    window: Annotated[int, typer.Option(min=1, help="Nights a retrain learns from.")] = 3,
    schedule_days: Annotated[int, typer.Option(min=1, help="Period of the schedule policy.")]
    = 3,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Backtest retraining policies (never, every night, schedule, triggers) on a timeline."""
    from monitoring.backtest import simulate as run_backtest
    from monitoring.backtest import write_outputs

    first = parse_date(start, "--start")
    assert first is not None
    results = run_backtest(dataset, load_timeline(scenario), nights, start=first,
                           seed=get_settings().seed, rows=rows, window=window,
                           schedule_days=schedule_days)
    frame = pd.DataFrame([r.summary() for r in results])
    print_frame(frame, fmt, title=f"policy backtest: {dataset}, {nights} nights")
    paths = write_outputs(results, dataset, get_settings().reports_dir / "backtest")
    if fmt is OutputFormat.table:
        print(f"plot {paths['png']}\nfigures {paths['json']}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="gunicorn worker processes.")] = 2,
    threads: Annotated[int, typer.Option(min=1, help="Threads per worker.")] = 4,
    dataset: Annotated[list[str] | None, typer.Option(
        help="Dataset to serve (repeatable; default every dataset with a champion).")] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Most records per request.")] = 1000,
    max_body_mb: Annotated[float, typer.Option(min=0.01, help="Largest request body, MB.")]
    = 10.0,
    flush_seconds: Annotated[float, typer.Option(min=0.01, help="Roll a worker's prediction "
                                                 "log into Parquet at least this often.")] = 2.0,
    flush_rows: Annotated[int, typer.Option(min=1, help="Roll a worker's prediction log into "
                                            "Parquet after this many rows.")] = 500,
    dev: Annotated[bool, typer.Option(help="Flask's development server (one process).")]
    = False,
) -> None:
    """Serve every champion over HTTP (Flask under gunicorn) until stopped."""
    from models.registry.manifest import publish_from_warehouse, unsigned_entries
    from models.serving.config import ServingConfig

    init_warehouse()
    snapshot = publish_from_warehouse()
    unsigned = unsigned_entries(snapshot)
    if unsigned:
        raise OvernightError(f"{len(unsigned)} served version(s) are not signed ("
                             f"{', '.join(unsigned)}): this home predates artifact signing; run "
                             "`overnight registry sign` once, then serve again")
    config = ServingConfig(datasets=dataset or None, max_batch=max_batch,
                           max_body_bytes=int(max_body_mb * 1024 * 1024),
                           flush_seconds=flush_seconds, flush_rows=flush_rows)
    served = dataset or sorted(snapshot["datasets"])
    if not served:
        raise OvernightError("no dataset has a champion yet: run `overnight demo` or a nightly "
                             "run first, or name datasets with --dataset")
    print(f"serving {', '.join(served)} on http://{host}:{port} "
          f"(docs: /docs, OpenAPI: /openapi.json)")
    if dev:
        from models.serving.app import create_app

        create_app(config).run(host=host, port=port)
        return
    from models.serving.server import serve as run_server

    run_server(config, host=host, port=port, workers=workers, threads=threads)


@app.command()
def predict(
    dataset: Annotated[str, typer.Option(help="Dataset whose champion scores the file.")],
    file: Annotated[Path, typer.Option(help="Input .csv or .parquet with the features.")],
    out: Annotated[Path, typer.Option(help="Output .csv or .parquet with the predictions.")],
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows scored at a time.")] = 50_000,
    log: Annotated[bool, typer.Option(help="Log the predictions for monitoring.")] = True,
    raw: Annotated[bool, typer.Option(help="Write CSV cells exactly, without escaping those "
                                      "that start a spreadsheet formula (=, +, -, @).")]
    = False,
) -> None:
    """Score a file with the current champion (invalid rows go to OUT.rejects with a reason).
    In CSV outputs, text cells that start with =, +, -, @, a tab or a carriage return get a
    leading ' so that spreadsheets do not run them (unless --raw); --out may not be --file."""
    from models.serving.batch import score_file

    result = score_file(dataset, file, out, chunk_rows=chunk_rows, log_predictions=log,
                        progress=sys.stderr.isatty(), raw=raw)
    print(f"{result.scored} rows scored by {result.model_version} into {result.output} "
          f"in {result.seconds:.1f} s")
    if result.rejects is not None:
        print(f"{result.rejected} rows rejected, with reasons, in {result.rejects}")


@app.command()
def collect() -> None:
    """Move the prediction logs, labels and alerts landed by serving into the warehouse (a bad
    file is set aside in landing/_rejected/ with its reason and an alert; the rest go in)."""
    from monitoring.collect import collect_serving_logs

    init_warehouse()
    counts = collect_serving_logs()
    collected = counts["prediction_files"] + counts["feedback_files"] + counts["alerts"]
    print(f"collected {collected} files: {counts['predictions']} predictions from "
          f"{counts['prediction_files']} files, {counts['feedback']} labels from "
          f"{counts['feedback_files']} files, {counts['alerts']} alerts; "
          f"rejected {counts['rejected']} files")
    for rejection in counts["rejections"]:
        print(f"  rejected {rejection['kind']}/{rejection['name']}: {rejection['reason']} "
              f"(moved to {rejection['path']})")


@app.command("close-alert")
def close_alert_command(
    alert_id: Annotated[str, typer.Argument(help="The alert to close (see `overnight alerts`).")],
) -> None:
    """Close an open alert."""
    from monitoring.alerts import close_alert

    print(f"closed {alert_id}" if close_alert(alert_id) else f"{alert_id} was already closed")


@app.command()
def board(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 8501,
    headless: Annotated[bool, typer.Option(help="Do not open a browser (servers).")] = False,
) -> None:
    """Open the status board (Streamlit) on the warehouse of this data home until stopped."""
    from monitoring.board.launch import board_url, run_board

    print(f"overnight board on {board_url(host, port)} (data home {get_settings().home})")
    code = run_board(host, port, headless)
    if code:
        raise typer.Exit(code)


def _user() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "cli"


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit 1."""
    try:
        app()
    except OvernightError as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
    except duckdb.Error as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
