"""`overnight alerts`, `close-alert` and `board`: what the nights flagged, and the Streamlit
status board over the warehouse."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestration.cli.common import FormatOption
from orchestration.cli.output import OutputFormat, print_frame
from warehouse import get_settings

commands = typer.Typer()


@commands.command()
def alerts(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    severity: Annotated[str | None, typer.Option(help="info, warning or critical.")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List open alerts, newest first."""
    from monitoring.alerts import open_alerts

    print_frame(open_alerts(dataset=dataset, severity=severity), fmt, title="open alerts")


@commands.command("close-alert")
def close_alert_command(
    alert_id: Annotated[str, typer.Argument(help="The alert to close (see `overnight alerts`).")],
) -> None:
    """Close an open alert."""
    from monitoring.alerts import close_alert

    print(f"closed {alert_id}" if close_alert(alert_id) else f"{alert_id} was already closed")


@commands.command("ab")
def ab_command(
    dataset: Annotated[str, typer.Option(help="Dataset.")],
) -> None:
    """A/B verdicts of the dataset's shadow and canary traffic; writes its A/B report."""
    from monitoring.ab_report import write_ab_report

    report = write_ab_report(dataset)
    for design, frame in (("shadow", report.shadow), ("canary", report.canary)):
        for row in frame.to_dict(orient="records"):
            print(f"{design} {row['challenger']} vs {row['champion']}: {row['verdict']}")
        if frame.empty:
            print(f"{design}: no traffic")
    print(f"report: {report.html_path}")


@commands.command()
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
