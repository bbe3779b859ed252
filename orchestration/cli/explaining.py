"""`overnight explain`: why one logged prediction got its class (SHAP), and for the medical
dataset the clinician's one-page report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from warehouse import OvernightError, connect

commands = typer.Typer()


@commands.command()
def explain(
    prediction_id: Annotated[str, typer.Argument(help="A prediction_id from an API answer or "
                                                 "a scored file (once its logs are collected).")],
    out: Annotated[Path | None, typer.Option(help="Write the clinician's HTML report of a "
                                             "medical prediction here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")]
    = False,
) -> None:
    """Explain a logged prediction with the model version that answered it (SHAP values
    recomputed from its logged inputs)."""
    from monitoring.board.queries.explanation import prediction_record
    from monitoring.explanations import explain_logged

    with connect(read_only=True) as con:
        record = prediction_record(con, prediction_id.strip())
    if record is None:
        raise OvernightError(f"unknown prediction id {prediction_id[:80]!r}: no prediction with "
                             "this id is in the warehouse (run `overnight collect` first?)")
    explanation = explain_logged(record)
    if out is not None:
        if record["dataset"] != "medical":
            raise OvernightError(f"the clinician's report is for medical predictions; "
                                 f"{prediction_id[:80]!r} is a {record['dataset']} prediction")
        from models.reports.clinician import clinician_report

        out.write_text(clinician_report(record, explanation), encoding="utf-8")
    if as_json:
        print(json.dumps(explanation, indent=2, default=str))
    else:
        reason = explanation.get("review_reason")
        review = f", needs review: {reason}" if reason else ""
        print(f"{record['dataset']} prediction {record['prediction_id']} by "
              f"{record['model_version']}: {record['predicted_class']} "
              f"(confidence {float(record['confidence']):.3f}{review})")
        print(f"SHAP ({explanation['method']}, {explanation['output']}): base "
              f"{explanation['base_value']:.4g} -> {explanation['output_value']:.4g}")
        for item in explanation.get("contributions", [])[:8]:
            print(f"  {item['contribution']:+.4f}  {item['feature']} = {item['value']}")
        for item in explanation.get("toward_predicted", [])[:8]:
            print(f"  {item['contribution']:+.4f}  {item['word']} ({item['column']})")
    if out is not None:
        print(f"clinician's report written to {out}")
