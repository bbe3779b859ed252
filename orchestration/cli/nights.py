"""`overnight demo`, `nightly`, `backfill` and `simulate`: whole nights of the loop through
the Prefect flows (with live progress on standard error), and the in-memory backtest of
retraining policies along a drift timeline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from models.data.dates import parse_date
from models.data.scenarios import resolve_timeline
from orchestration.cli.common import (
    FormatOption,
    err,
    init_warehouse,
    print_locations,
    use_local_prefect,
)
from orchestration.cli.output import OutputFormat, print_frame
from orchestration.demo import DEMO_NIGHTS, DEMO_START, NightProgress, run_demo
from orchestration.summary import summary_frame
from warehouse import OvernightError, get_settings

commands = typer.Typer()


@commands.command()
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


@commands.command()
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
    from orchestration.flows import nightly as nightly_flow

    with NightProgress(err) as progress:
        rows = nightly_flow(night, dataset, timeline, None, get_settings().seed, None,
                            force_retrain, observe=progress.observe)
    print_frame(summary_frame(rows), OutputFormat.table, title="night")


@commands.command()
def backfill(
    start: Annotated[str, typer.Option(help="First night, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last night, YYYY-MM-DD.")],
    dataset: Annotated[list[str] | None, typer.Option(help="Dataset (repeatable).")] = None,
    timeline: Annotated[str | None, typer.Option(help="Drift timeline file.")] = None,
) -> None:
    """Run the nightly loop for each night from start to end, in order (idempotent)."""
    init_warehouse()
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if last < first:
        raise OvernightError(f"--end {last} is before --start {first}")
    use_local_prefect()
    from orchestration.flows import backfill as backfill_flow

    with NightProgress(err) as progress:
        rows = backfill_flow(start, end, dataset, timeline, start, get_settings().seed,
                             observe=progress.observe)
    print_frame(summary_frame(rows), OutputFormat.table, title="backfill")


@commands.command()
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
    rollback: Annotated[bool, typer.Option(
        help="Apply the automatic-rollback rule to each promotion (the policy's rollback_*)."
    )] = True,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Backtest retraining policies (never, every night, schedule, triggers) on a timeline,
    with the automatic-rollback rule watching each promotion (unless --no-rollback)."""
    from monitoring.backtest import simulate as run_backtest
    from monitoring.backtest import write_outputs

    first = parse_date(start, "--start")
    results = run_backtest(dataset, resolve_timeline(scenario, default_start=first), nights,
                           start=first, seed=get_settings().seed, rows=rows, window=window,
                           schedule_days=schedule_days, rollback=rollback)
    frame = pd.DataFrame([r.summary() for r in results])
    print_frame(frame, fmt, title=f"policy backtest: {dataset}, {nights} nights")
    paths = write_outputs(results, dataset, get_settings().reports_dir / "backtest")
    if fmt is OutputFormat.table:
        print(f"plot {paths['png']}\nfigures {paths['json']}")
