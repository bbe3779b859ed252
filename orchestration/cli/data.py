"""`overnight generate`, `overnight ingest` and `overnight datasets`: batches into the
warehouse (generated along a drift scenario, or a user's file) and the datasets they feed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from models.data.batches import StoredBatch, generate_batch
from models.data.datasets import BUILTIN
from models.data.dates import parse_date
from models.data.ingest import ingest_file
from models.data.scenarios import SCENARIOS, resolve_scenario
from orchestration.cli.common import FormatOption, init_warehouse
from orchestration.cli.output import OutputFormat, print_frame
from warehouse import connect, get_settings

commands = typer.Typer()
datasets_app = typer.Typer(help="List the datasets, or change a dataset's spec.")


def print_batch(batch: StoredBatch) -> None:
    state = "already in the warehouse" if batch.already_present else batch.status
    print(f"{batch.batch_id}: {batch.n_rows} rows, {state}")
    if batch.reason:
        print(f"  quarantined because {batch.reason}")
    for check in batch.checks:
        mark = "ok " if check.passed else ("FAIL" if check.blocking else "warn")
        print(f"  [{mark}] {check.name}: {check.detail}")


@commands.command()
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
    init_warehouse()
    drift, label = resolve_scenario(scenario, dataset, when, intensity=intensity,
                                    start=parse_date(start, "--start"))
    batch = generate_batch(dataset, when, n_rows=rows, drift=drift, scenario=label,
                           seed=get_settings().seed if seed is None else seed)
    print_batch(batch)


@commands.command()
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
    from models.registry.spec_change import change_spec

    print(change_spec(name, spec, before_write=init_warehouse))


commands.add_typer(datasets_app, name="datasets")
