"""`overnight serve`, `predict` and `collect`: the champions answering over HTTP or scoring a
file, and the prediction logs, labels and alerts that serving landed brought into the
warehouse."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli.common import init_warehouse
from warehouse import OvernightError

commands = typer.Typer()


@commands.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="gunicorn worker processes.")] = 2,
    threads: Annotated[int, typer.Option(min=1, help="Threads per worker (4: measured best "
                                         "on 2 cores, see bench_serving.py).")] = 4,
    worker_connections: Annotated[int | None, typer.Option(
        min=1, help="Most connections one worker holds (default: --threads, one request per "
        "connection; more keeps connections alive, and lets one worker take a whole burst of "
        "clients).")] = None,
    dataset: Annotated[list[str] | None, typer.Option(
        help="Dataset to serve (repeatable; default every dataset with a champion).")] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Most records per request.")] = 1000,
    max_body_mb: Annotated[float, typer.Option(min=0.01, help="Largest request body, MB.")]
    = 10.0,
    flush_seconds: Annotated[float, typer.Option(min=0.01, help="Roll a worker's prediction "
                                                 "log into Parquet at least this often.")] = 2.0,
    flush_rows: Annotated[int, typer.Option(min=1, help="Roll a worker's prediction log into "
                                            "Parquet after this many rows.")] = 5000,
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

    run_server(config, host=host, port=port, workers=workers, threads=threads,
               worker_connections=worker_connections)


@commands.command()
def predict(
    dataset: Annotated[str, typer.Option(help="Dataset whose champion scores the file.")],
    file: Annotated[Path, typer.Option(help="Input .csv or .parquet with the features.")],
    out: Annotated[Path, typer.Option(help="Output .csv or .parquet with the predictions.")],
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows scored at a time.")] = 50_000,
    log: Annotated[bool, typer.Option(help="Log the predictions for monitoring.")] = True,
    raw: Annotated[bool, typer.Option(help="Write CSV cells exactly, without escaping those "
                                      "that start a spreadsheet formula (=, +, -, @).")]
    = False,
    explain: Annotated[bool, typer.Option(help="Add each row's SHAP explanation (JSON) in an "
                                          "`explanation` column (slower).")] = False,
) -> None:
    """Score a file with the current champion (invalid rows go to OUT.rejects with a reason).
    In CSV outputs, text cells that start with =, +, -, @, a tab or a carriage return get a
    leading ' so that spreadsheets do not run them (unless --raw); --out may not be --file."""
    import gc

    from models.serving.batch import score_file

    gc.freeze()         # the libraries' objects: out of the cyclic collector's walks
    result = score_file(dataset, file, out, chunk_rows=chunk_rows, log_predictions=log,
                        progress=sys.stderr.isatty(), raw=raw, explain=explain)
    print(f"{result.scored} rows scored by {result.model_version} into {result.output} "
          f"in {result.seconds:.1f} s")
    if result.rejects is not None:
        print(f"{result.rejected} rows rejected, with reasons, in {result.rejects}")


@commands.command()
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
