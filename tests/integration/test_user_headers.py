"""Users' column names are data, never SQL: any header works end to end or is refused, before
anything is written, with one line naming the column and why."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from models.data.batches import load_batch, load_training_frame
from models.data.datasets import get_spec
from models.data.ingest import IngestError, ingest_file
from models.registry.spec_change import change_spec
from models.serving.schemas import record_model
from orchestration.cli import app
from tests.support.serving_support import data_home
from warehouse import OvernightError, connect

OVERNIGHT = str(Path(sys.executable).parent / "overnight")


def overnight(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    started = time.perf_counter()
    out = subprocess.run([OVERNIGHT, *args], capture_output=True, text=True, timeout=300,
                         cwd=cwd)
    print(f"{time.perf_counter() - started:6.1f} s  overnight {args[0]}")
    return out


def one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 1, out.stdout + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


def tables() -> set[str]:
    with connect(read_only=True) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
                .fetchall()}


def written() -> tuple[int, int, int, set[str]]:
    with connect(read_only=True) as con:
        counts = tuple(int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
                       for t in ("datasets", "batches", "quality_checks"))
    return (*counts, tables())  # type: ignore[return-value]


# ------------------------------------------------------------------ the property, in-process

INJECTION = "c\" VARCHAR); COPY (SELECT 1) TO '{canary}'; --"
GOOD = ["Width", "width", "WIDTH", "sepal.length", "petal width", "it's", 'say "hi"', "größe",
        "名前", "select", "from", "table", "batch_id", "row_number", "label", "f0", "_x", "__y",
        "model_config", "model_fields", "model_dump", "model_validate", "confidence",
        "Unnamed: 0", "a.1", "x" * 200, " lead", "trail ", INJECTION]
BAD = ["", " ", "a\x00b", "tab\there", "x" * 201, "__index_level_0__"]
names = st.one_of(st.sampled_from(GOOD), st.sampled_from(BAD),
                  st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                          min_size=1, max_size=10))
headers_strategy = st.one_of(st.lists(names, min_size=2, max_size=5, unique=True),
                             st.lists(st.sampled_from(GOOD), min_size=2, max_size=6,
                                      unique=True),
                             st.lists(names, min_size=2, max_size=5))
SEQUENCE = itertools.count()


def _table(headers: list[str], rows: int = 24) -> list[list[object]]:
    """Columns by position: even ones numeric, odd ones categorical, the last the target."""
    columns: list[list[object]] = []
    for i in range(len(headers) - 1):
        columns.append([float(r * (i + 1)) for r in range(rows)] if i % 2 == 0
                       else [("u", "v", "w")[r % 3] for r in range(rows)])
    columns.append([("a", "b")[r % 2] for r in range(rows)])
    return columns


def _write(path: Path, headers: list[str], columns: list[list[object]]) -> None:
    if path.suffix == ".csv":
        frame = pd.DataFrame(dict(enumerate(columns)))
        frame.columns = headers
        frame.to_csv(path, index=False)
    else:
        pq.write_table(pa.Table.from_arrays([pa.array(c) for c in columns], names=headers), path)


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with data_home(tmp_path_factory.mktemp("headers") / "home") as home:
        yield home


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(headers=headers_strategy, parquet=st.booleans())
def test_any_header_round_trips_or_is_refused_before_any_write(
        shared_home: Path, tmp_path_factory: pytest.TempPathFactory, headers: list[str],
        parquet: bool) -> None:
    scratch = tmp_path_factory.mktemp("h")
    canary = scratch / "canary"
    headers = [h.format(canary=canary) if h == INJECTION else h for h in headers]
    path = scratch / ("data.parquet" if parquet else "data.csv")
    columns = _table(headers)
    _write(path, headers, columns)
    dataset = f"h{next(SEQUENCE)}"
    before = written()
    try:
        batch = ingest_file(dataset, path, target=headers[-1].strip())
    except IngestError as error:
        event("refused: " + str(error).split(": ", 1)[1].split(" ", 2)[-1][:40])
        assert "\n" not in str(error)
        assert written() == before                      # refused: nothing at all written
        assert not canary.exists()
        return
    assert not canary.exists()
    event("accepted")
    assert batch.status == "accepted", batch.reason
    with connect(read_only=True) as con:
        spec = get_spec(con, dataset)
    headers = [h.strip() for h in headers]      # spaces around a name are dropped at read
    assert [*spec.feature_names, spec.target] == headers      # the user's exact names
    stored = load_batch(spec, batch.batch_id)
    assert list(stored.columns) == headers
    for position, values in enumerate(columns):
        assert stored.iloc[:, position].tolist() == values
    training, used = load_training_frame(spec)
    assert list(training.columns) == headers and used == [batch.batch_id]
    record = record_model(spec)                            # the serving schema, by user names
    row = {h: stored.iloc[0, i] for i, h in enumerate(headers[:-1])}
    row = {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in row.items()}
    assert record.model_validate_json(json.dumps(row)).model_dump() == row
    assert list(record.model_json_schema()["properties"]) == headers[:-1]
    with pytest.raises(ValidationError) as refused:
        record.model_validate({**row, "f0": 1.0, "__extra__": 1})
    assert {e["loc"][0] for e in refused.value.errors()} >= {"__extra__"}


# ------------------------------------------------------------- refusals name the column

@pytest.mark.parametrize(("header", "message"), [
    ("a,a,y", "column name(s) 'a' appear more than once"),
    ("a,,y", "column 2 '' is empty"),
    ("a, ,y", "column 2 '' is empty"),
    ("a, a,y", "column name(s) 'a' appear more than once"),
    (f"a,{'z' * 250},y", "is 250 characters long (at most 200)"),
    ('a,"b\tc",y', "contains the control character U+0009"),
])
def test_unusable_headers_refused_naming_the_column(
        warehouse_path: Path, tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(header + "\n" + "\n".join(f"{i},{i % 3},{'ab'[i % 2]}"
                                               for i in range(30)) + "\n", encoding="utf-8")
    before = written()
    with pytest.raises(IngestError) as refused:
        ingest_file("bad", path, target="y")
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert str(refused.value).startswith(f"{path}: ")
    assert written() == before


# ------------------------------------------------------------- quality and spec lifecycle

def _frame(n: int = 40, classes: tuple[str, ...] = ("no", "yes")) -> pd.DataFrame:
    return pd.DataFrame({"x": [float(i) for i in range(n)], "kind": [("p", "q")[i % 2]
                                                                    for i in range(n)],
                         "y": [classes[(i // 3) % len(classes)] for i in range(n)]})


def test_infinity_quarantines_a_first_file_which_does_not_fix_the_spec(
        warehouse_path: Path, tmp_path: Path) -> None:
    first = _frame(classes=("no", "yes", "maybe"))
    first.loc[3, "x"] = np.inf
    first.loc[5, "x"] = -np.inf
    path = tmp_path / "first.csv"
    first.to_csv(path, index=False)
    out = overnight("ingest", "--dataset", "fresh", "--file", str(path), "--target", "y",
                    "--batch-date", "2026-05-01")
    assert out.returncode == 0, out.stderr
    assert "quarantined because non_finite: 2 infinite value(s) ('x': 2)" in out.stdout
    with connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM datasets").fetchone() == (0,)
        assert con.execute("SELECT status FROM batches").fetchall() == [("quarantined",)]
        assert con.execute("SELECT count(*) FROM quality_checks WHERE check_name ="
                           " 'non_finite' AND NOT passed").fetchone() == (1,)
    second = tmp_path / "second.csv"
    _frame().to_csv(second, index=False)            # two classes only: its spec wins
    out = overnight("ingest", "--dataset", "fresh", "--file", str(second), "--target", "y",
                    "--batch-date", "2026-05-02")
    assert out.returncode == 0 and "accepted" in out.stdout, out.stdout + out.stderr
    with connect(read_only=True) as con:
        spec = get_spec(con, "fresh")
    assert spec.classes == ("no", "yes")
    frame, used = load_training_frame(spec)
    assert len(frame) == 40 and len(used) == 1


@pytest.mark.parametrize("existing", [False, True])
def test_refused_ingest_leaves_a_new_data_home_exactly_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool) -> None:
    home = tmp_path / "home"
    if existing:
        home.mkdir()
    monkeypatch.setenv("OVERNIGHT_HOME", str(home))
    path = tmp_path / "dupes.csv"
    path.write_text("a,a,y\n" + "".join(f"{i},{i},{'ab'[i % 2]}\n" for i in range(30)))
    out = overnight("ingest", "--dataset", "fresh", "--file", str(path), "--target", "y",
                    cwd=tmp_path)
    one_line_error(out, "column name(s) 'a' appear more than once")
    assert home.exists() == existing and (not existing or not any(home.iterdir()))
    assert sorted(p.name for p in tmp_path.iterdir()) == (["dupes.csv", "home"] if existing
                                                          else ["dupes.csv"])
    good = tmp_path / "good.csv"
    _frame().to_csv(good, index=False)
    assert overnight("ingest", "--dataset", "fresh", "--file", str(good), "--target", "y",
                     cwd=tmp_path).returncode == 0
    assert (home / "warehouse.duckdb").exists()


def test_spec_option_on_an_existing_dataset_and_reset_spec(warehouse_path: Path,
                                                           tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    _frame().to_csv(data, index=False)
    assert overnight("ingest", "--dataset", "fresh", "--file", str(data), "--target", "y",
                     "--batch-date", "2026-05-01").returncode == 0
    with connect(read_only=True) as con:
        spec = get_spec(con, "fresh")
    same, other = tmp_path / "same.json", tmp_path / "other.json"
    same.write_text(spec.to_json())
    changed = spec.model_copy(update={"features": (
        spec.features[0].model_copy(update={"min": 0.0, "max": 100.0}), *spec.features[1:])})
    other.write_text(changed.to_json())
    again = tmp_path / "again.csv"
    _frame(30).to_csv(again, index=False)
    before = written()
    out = overnight("ingest", "--dataset", "fresh", "--file", str(again), "--spec", str(other))
    one_line_error(out, "differs from it", f"overnight datasets reset-spec fresh --spec {other}")
    assert written() == before
    batch = ingest_file("fresh", again, spec_path=same, batch_date=date(2026, 5, 2))
    assert batch.status == "accepted"

    runner = CliRunner()
    assert "reset-spec" in runner.invoke(app, ["datasets", "--help"]).stdout
    listing = runner.invoke(app, ["datasets", "-f", "json"])
    assert listing.exit_code == 0 and json.loads(listing.stdout)[0]["batches"] == 2
    out = overnight("datasets", "reset-spec", "fresh", "--spec", str(other))
    assert out.returncode == 0 and "spec revision 1" in out.stdout, out.stderr
    with connect(read_only=True) as con:
        new = get_spec(con, "fresh")
    assert new.revision == 1 and new.feature("x").max == 100.0
    assert load_training_frame(new)[1] == []          # old batches: kept, not trained on
    batch = ingest_file("fresh", data, batch_date=date(2026, 5, 1))
    assert batch.batch_id.startswith("fresh-r1-2026-05-01-") and not batch.already_present
    assert len(load_training_frame(new)[0]) == 40
    with connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM batches").fetchone() == (3,)

    assert "spec cleared" in change_spec("fresh", None)     # no file: the next file decides
    with pytest.raises(IngestError, match="is new: give --target"):
        ingest_file("fresh", data)
    wide = _frame().assign(z=1.5)
    wide.to_csv(data, index=False)
    assert ingest_file("fresh", data, target="y").status == "accepted"
    with connect(read_only=True) as con:
        latest = get_spec(con, "fresh")
    assert latest.revision == 2 and latest.feature_names == ["x", "kind", "z"]
    with pytest.raises(OvernightError, match="is built in"):
        change_spec("customer", None)


# ------------------------------------------------------------------ one table, end to end

def _nasty_frame(canary: Path, rows: int = 160) -> pd.DataFrame:
    """Every class of awkward name at once; the target follows `Width` + `width`."""
    rng = np.random.default_rng(3)
    width, twin = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    return pd.DataFrame({
        "Width": width, "width": twin,                               # case twins
        "sepal.length": rng.normal(5, 1, rows),                      # a dot
        "petal width": rng.normal(1, 0.2, rows),                     # a space
        'it\'s "quoted"': rng.choice(["p", "q"], rows),              # quotes
        "größe": rng.normal(170, 10, rows),                          # non-ASCII
        "select": rng.normal(0, 1, rows),                            # an SQL keyword
        "batch_id": rng.choice(["b1", "b2", "b3"], rows),            # our internal names
        "row_number": np.arange(rows, dtype=float),
        "_private": rng.normal(0, 1, rows),                          # leading underscore
        "model_config": rng.normal(0, 1, rows),                      # pydantic's names
        "model_fields": rng.choice(["m", "n"], rows),
        "confidence": rng.normal(0, 1, rows),                        # a predict output name
        INJECTION.format(canary=canary): rng.normal(0, 1, rows),     # SQL in a header
        "label": np.where(width + twin > 0, "up", "down"),           # the target: ours too
    })


@pytest.fixture(scope="module")
def nasty_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("nasty")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVERNIGHT_HOME", str(root / "home"))
        patch.setenv("OVERNIGHT_SIGNING_KEY_FILE", str(root / "signing.key"))
        yield root, root / "canary"


@pytest.mark.slow     # a real Metaflow training run (make test-fast skips it)
def test_every_awkward_name_at_once_from_ingest_to_the_board(
        nasty_home: tuple[Path, Path]) -> None:
    root, canary = nasty_home
    frame = _nasty_frame(canary)
    names = list(frame.columns)
    data = root / "nasty.csv"
    frame.to_csv(data, index=False)
    out = overnight("ingest", "--dataset", "nasty", "--file", str(data), "--target", "label",
                    "--batch-date", "2026-05-01")
    assert out.returncode == 0 and "accepted" in out.stdout, out.stdout + out.stderr
    out = overnight("train", "--dataset", "nasty", "--no-optimize", "--algorithms",
                    "logistic_regression", "--quiet", "--cv-folds", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    with connect(read_only=True) as con:
        version = con.execute("SELECT model_version FROM model_aliases WHERE dataset = 'nasty'"
                              " AND alias = 'challenger'").fetchone()[0]  # type: ignore[index]
    out = overnight("validate", "--dataset", "nasty")
    assert out.returncode == 0 and "PASSED" in out.stdout, out.stdout + out.stderr
    out = overnight("promote", "--dataset", "nasty", "--version", version, "--reason", "test")
    assert out.returncode == 0, out.stdout + out.stderr

    incoming = frame.drop(columns="label").head(20)
    source, scored = root / "in.csv", root / "out.csv"
    incoming.to_csv(source, index=False)
    out = overnight("predict", "--dataset", "nasty", "--file", str(source), "--out",
                    str(scored))
    assert out.returncode == 0, out.stdout + out.stderr
    result = pd.read_csv(scored)
    assert list(result.columns[:len(incoming.columns)]) == list(incoming.columns)
    assert "overnight_confidence" in result.columns             # ours, not the user's column
    np.testing.assert_allclose(result["confidence"], incoming["confidence"])
    accuracy = (result["predicted_class"] == frame["label"].head(20)).mean()
    assert accuracy >= 0.8

    from models.serving.app import create_app
    from models.serving.config import ServingConfig

    client = create_app(ServingConfig(datasets=("nasty",), background=False)).test_client()
    record = json.loads(incoming.iloc[[0]].to_json(orient="records"))[0]
    answer = client.post("/v1/datasets/nasty/predict", json=record)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["predictions"][0]["class_name"] in ("up", "down")
    wrong = client.post("/v1/datasets/nasty/predict", json={**record, "model_config": "x",
                                                             "f0": 1})
    assert wrong.status_code == 422
    fields = {d["field"] for d in wrong.get_json()["details"]}
    assert {"model_config", "f0"} <= fields
    schema = client.get("/openapi.json").get_json()
    record_schemas = [s for n, s in schema["components"]["schemas"].items()
                      if n.endswith("Record") and "properties" in s
                      and "Width" in s["properties"]]
    assert record_schemas and list(record_schemas[0]["properties"]) == names[:-1]

    from monitoring.drift.nightly import run_drift_report

    with connect(read_only=True) as con:
        batch_id = con.execute("SELECT batch_id FROM batches WHERE dataset = 'nasty'"
                               ).fetchone()[0]  # type: ignore[index]
    summary = run_drift_report("nasty", batch_id, version, night_date=date(2026, 5, 1))
    assert summary.html_path is not None and Path(summary.html_path).exists()

    one_line_error(overnight("datasets", "reset-spec", "nasty"), f"champion {version}")
    assert overnight("collect").returncode == 0
    from monitoring.board import data as board

    with connect(read_only=True) as con:
        filters = board.Filters(datasets=("nasty",))
        assert not board.models(con, "nasty").versions.empty
        board.performance(con, "nasty", filters)
        board.overview(con, filters)
        columns = board.drift_columns(con, filters)
        assert set(names[:-1]) <= set(columns["column_name"])     # the user's names, shown
        shown = board.predictions(con, filters, board.ROLES)
        assert int(shown.roles["predictions"].sum()) >= 20     # `overnight predict`'s rows
    assert not canary.exists()
    assert not any(p.name == "canary" for p in root.rglob("*"))


def test_only_internal_names_can_become_sql_identifiers() -> None:
    from models.data.identifiers import IdentifierError, quote, rows_table

    assert quote("f12") == '"f12"' and quote(rows_table("customer", 2)) == '"rowsr2_customer"'
    for name in ['a"b', "Width", "select 1; --", "_x", "", "größe", "x" * 64]:
        with pytest.raises(IdentifierError):
            quote(name)
