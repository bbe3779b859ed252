"""Shadow agreement pairs a served prediction with the shadow one of the same dataset,
request and record: a client may send one `X-Request-ID` to two datasets whose records look
alike, and their answers must not be compared (the board reads the same report)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from monitoring.board import data
from warehouse import connect
from warehouse.reports import run_report

AT = datetime(2026, 11, 17, 9)


def test_pairs_never_cross_datasets(warehouse_path: Path) -> None:
    rows = [("a1", "alpha", "alpha-v1", "served", "yes"),
            ("a2", "alpha", "alpha-v2", "shadow", "yes"),
            ("b1", "beta", "beta-v1", "served", "no"),
            ("b2", "beta", "beta-v2", "shadow", "yes")]
    with connect() as con:
        con.executemany(
            "INSERT INTO predictions (prediction_id, dataset, model_version, role, request_id,"
            " predicted_at, predicted_class, inputs) VALUES (?, ?, ?, ?, 'same-id', ?, ?,"
            " '{\"x\": 1}')", [(p, d, v, r, AT, c) for p, d, v, r, c in rows])
    with connect(read_only=True) as con:
        report = run_report(con, "shadow_agreement", {})
        board = data.shadow_agreement(con, data.Filters())
    assert list(zip(report["dataset"], report["shadow"], report["pairs"], report["agreement"],
                    strict=True)) == [("alpha", "alpha-v2", 1, 1.0), ("beta", "beta-v2", 1, 0.0)]
    assert list(board["shadow_version"]) == list(report["shadow"])
    assert list(board["agreement"]) == list(report["agreement"])
