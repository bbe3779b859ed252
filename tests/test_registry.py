"""The model registry on a real warehouse file and real artifacts."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from models.catalogue import build_model
from models.features import feature_frame
from models.generators import customer
from models.registry import (
    ArtifactIntegrityError,
    RegistryError,
    alias_history,
    aliases,
    file_sha256,
    get_version,
    list_versions,
    load_model,
    promote,
    register_model,
    rollback,
    set_alias,
)


@pytest.fixture(scope="module")
def fitted():
    frame = customer.generate(date(2026, 6, 1), 300, 1)
    y = frame.pop("segment")
    x = feature_frame(frame, customer.SPEC)
    return build_model(customer.SPEC, "logistic_regression").fit(x, y), x


def _register(model, n: int = 1):
    return [register_model(model, customer.SPEC, algorithm="logistic_regression",
                           metrics={"accuracy": 0.9}, training_batches=["customer-2026-06-01"],
                           run_id=f"run-{i}") for i in range(n)]


def test_round_trip_with_card(warehouse_path: Path, fitted) -> None:
    model, x = fitted
    (version,) = _register(model)
    assert version.model_version == "customer-v1"
    card = json.loads((version.artifact_path.parent / "card.json").read_text())
    assert card["sha256"] == file_sha256(version.artifact_path) == version.sha256
    assert card["classes"] == list(customer.SPEC.classes)
    assert card["input_schema"]["features"][0]["name"] == "age"
    assert card["training_batches"] == ["customer-2026-06-01"]
    assert {"scikit-learn", "numpy", "python"} <= set(card["libraries"])
    loaded, again = load_model("customer-v1")
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert again.card == get_version("customer-v1").card


def test_tampered_or_truncated_artifact_refused(warehouse_path: Path, fitted) -> None:
    model, _ = fitted
    first, second = _register(model, 2)
    with first.artifact_path.open("ab") as handle:
        handle.write(b"evil")
    with pytest.raises(ArtifactIntegrityError, match=r"customer-v1.*refusing"):
        load_model("customer-v1")
    data = second.artifact_path.read_bytes()
    second.artifact_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactIntegrityError, match="customer-v2"):
        load_model("customer-v2")
    second.artifact_path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        load_model("customer-v2")
    with pytest.raises(RegistryError, match="no model version"):
        load_model("customer-v9")


def test_promote_and_rollback_keep_history(warehouse_path: Path, fitted) -> None:
    model, _ = fitted
    _register(model, 3)
    assert promote("customer", "customer-v1", reason="first") is None
    set_alias("customer", "challenger", "customer-v2", reason="trained")
    assert promote("customer", "customer-v2", reason="better") == "customer-v1"
    assert aliases("customer") == {"champion": "customer-v2", "previous": "customer-v1"}
    assert rollback("customer", reason="bad night") == "customer-v1"
    assert aliases("customer") == {"champion": "customer-v1", "previous": "customer-v2"}
    champions = [h["model_version"] for h in alias_history("customer", "champion")]
    assert champions == ["customer-v1", "customer-v2", "customer-v1"]
    assert alias_history("customer", "champion")[-1]["reason"] == "rollback: bad night"
    with pytest.raises(RegistryError, match="unknown alias"):
        set_alias("customer", "king", "customer-v1", reason="x")
    assert [v.version for v in list_versions("customer")] == [1, 2, 3]


def test_rollback_without_previous_is_refused(warehouse_path: Path, fitted) -> None:
    model, _ = fitted
    _register(model)
    promote("customer", "customer-v1", reason="first")
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback("customer", reason="oops")


PROMOTER = textwrap.dedent("""
    import sys
    from models.registry import promote
    first, second, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(n):
        promote("customer", first if i % 2 == 0 else second, reason=f"{first}/{i}")
    print("done")
""")


def test_alias_switch_atomic_under_two_concurrent_writers(warehouse_path: Path, fitted) -> None:
    model, _ = fitted
    _register(model, 4)
    procs = [subprocess.Popen([sys.executable, "-c", PROMOTER, a, b, "12"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a, b in (("customer-v1", "customer-v2"), ("customer-v3", "customer-v4"))]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    history = alias_history("customer")
    champions = [h for h in history if h["alias"] == "champion"]
    # an unbroken chain: every switch starts from the champion the last switch left behind
    for before, after in itertools.pairwise(champions):
        assert after["previous_version"] == before["model_version"]
    # each switch moved the old champion to `previous` in the same unit of work
    for switch in champions[1:]:
        index = history.index(switch)
        assert history[index - 1]["alias"] == "previous"
        assert history[index - 1]["model_version"] == switch["previous_version"]
    final = aliases("customer")
    assert final["champion"] == champions[-1]["model_version"]
    assert final["previous"] == champions[-1]["previous_version"]


def test_rows_written_within_registration_land_together_or_not_at_all(
    warehouse_path: Path, fitted
) -> None:
    from models.registry import set_alias_in
    from warehouse import connect

    model, _ = fitted

    def broken(con, version):
        set_alias_in(con, "customer", "challenger", version.model_version, reason="trained")
        raise RuntimeError("crash after the alias switch")

    with pytest.raises(RuntimeError):
        register_model(model, customer.SPEC, algorithm="lr", metrics={}, training_batches=[],
                       within=broken)
    with connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM model_versions").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM model_aliases").fetchone() == (0,)
    assert not (warehouse_path.parent / "artifacts" / "customer" / "v1").exists()
    version = register_model(
        model, customer.SPEC, algorithm="lr", metrics={}, training_batches=[],
        within=lambda con, v: set_alias_in(con, "customer", "challenger", v.model_version,
                                           reason="trained"))
    assert aliases("customer") == {"challenger": version.model_version}
