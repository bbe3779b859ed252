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

from models.data.generators import customer
from models.data.spec import feature_frame
from models.learning.catalogue import build_model
from models.registry.versions import (
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
    from models.registry.versions import promote
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
    from models.registry.versions import set_alias_in
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


# ------------------------------------------------------------------ signatures (issue 17)

OVERNIGHT = str(Path(sys.executable).parent / "overnight")


def _signature_row(model_version: str) -> tuple | None:
    from warehouse import connect

    with connect(read_only=True) as con:
        return con.execute("SELECT signature, key_id, signed_at FROM model_signatures"
                           " WHERE model_version = ?", [model_version]).fetchone()


def _unsign(*versions: str) -> None:
    """What a home registered before signing looks like: no signature rows."""
    from models.registry.manifest import publish_from_warehouse
    from warehouse import connect

    with connect() as con:
        for version in versions:
            con.execute("DELETE FROM model_signatures WHERE model_version = ?", [version])
    publish_from_warehouse()


def test_registration_signs_into_warehouse_and_manifest(warehouse_path: Path, fitted) -> None:
    from models.registry.manifest import read_aliases
    from models.registry.signing import signature_matches, signing_key, statement

    model, _ = fitted
    (version,) = _register(model)
    promote("customer", version.model_version, reason="first")
    stored = get_version("customer-v1")
    assert stored.signature and stored.signature.startswith("hmac-sha256:")
    assert stored.signature == version.signature == _signature_row("customer-v1")[0]
    entry = read_aliases()["datasets"]["customer"]["champion"]
    assert entry["signature"] == stored.signature
    claim = statement(dataset="customer", model_version="customer-v1",
                      artifact="customer/v1/model.joblib", sha256=stored.sha256, card=entry["card"])
    assert signature_matches(claim, entry["signature"], signing_key())
    for bound in ("dataset", "model_version", "artifact", "sha256"):   # every field is bound
        assert not signature_matches({**claim, bound: "x"}, entry["signature"], signing_key())


def test_hash_beside_path_in_the_warehouse_is_not_trusted(warehouse_path: Path, fitted,
                                                          tmp_path: Path) -> None:
    """The attacker writes the warehouse row too: a new file and its own sha256."""
    from tests.support.signing_support import canary_pickle
    from warehouse import connect

    model, _ = fitted
    first, _second = _register(model, 2)
    canary = tmp_path / "canary"
    evil_sha = canary_pickle(first.artifact_path, canary)           # swapped in place
    outside = tmp_path / "evil.joblib"
    outside_sha = canary_pickle(outside, canary)
    with connect() as con:
        con.execute("UPDATE model_versions SET sha256 = ? WHERE model_version = 'customer-v1'",
                    [evil_sha])
        con.execute("UPDATE model_versions SET sha256 = ?, artifact_path = ?"
                    " WHERE model_version = 'customer-v2'", [outside_sha, str(outside)])
    with pytest.raises(ArtifactIntegrityError, match=r"customer-v1.*does not verify"):
        load_model("customer-v1")
    with pytest.raises(ArtifactIntegrityError, match=r"outside the data home's artifacts"):
        load_model("customer-v2")
    # a symlink under artifacts/ that leads outside is refused the same way
    link = first.artifact_path.parent / "link.joblib"
    link.symlink_to(outside)
    with connect() as con:
        con.execute("UPDATE model_versions SET artifact_path = ? "
                    " WHERE model_version = 'customer-v2'", [str(link)])
    with pytest.raises(ArtifactIntegrityError, match="outside"):
        load_model("customer-v2")
    assert not canary.exists()


def test_unsigned_or_foreign_key_versions_are_refused(warehouse_path: Path, fitted,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = fitted
    _register(model, 2)
    _unsign("customer-v1")
    with pytest.raises(ArtifactIntegrityError, match="overnight registry sign"):
        load_model("customer-v1")
    monkeypatch.setenv("OVERNIGHT_SIGNING_KEY", "another key that is long enough, 32+ bytes")
    with pytest.raises(ArtifactIntegrityError, match=r"customer-v2.*does not verify"):
        load_model("customer-v2")


def _sign_cli(*args: str) -> tuple[int, list[dict], str]:
    out = subprocess.run([OVERNIGHT, "registry", "sign", "--format", "json", *args],
                         capture_output=True, text=True, timeout=120)
    rows = json.loads(out.stdout) if out.stdout.strip() else []
    return out.returncode, rows, out.stderr


def test_registry_sign_signs_an_old_home_once_and_refuses_changed_files(
        warehouse_path: Path, fitted, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.registry.manifest import read_aliases

    model, _ = fitted
    _register(model, 2)
    promote("customer", "customer-v1", reason="first")
    _unsign("customer-v1", "customer-v2")
    assert read_aliases()["datasets"]["customer"]["champion"]["signature"] is None
    refused = subprocess.run([OVERNIGHT, "serve", "--port", "9", "--dataset", "customer"],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "run `overnight registry sign` once" in refused.stderr
    assert "Traceback" not in refused.stderr

    code, rows, err = _sign_cli()
    assert code == 0, err
    assert [(r["model_version"], r["status"]) for r in rows] == [
        ("customer-v1", "signed"), ("customer-v2", "signed")]
    assert read_aliases()["datasets"]["customer"]["champion"]["signature"] == \
        get_version("customer-v1").signature
    load_model("customer-v1")
    signed_at = _signature_row("customer-v1")[2]

    code, rows, err = _sign_cli()                                  # idempotent
    assert code == 0, err
    assert {r["status"] for r in rows} == {"already signed"}
    assert _signature_row("customer-v1")[2] == signed_at

    (third,) = _register(model)
    _unsign(third.model_version)
    with third.artifact_path.open("ab") as handle:
        handle.write(b"changed after registration")
    code, rows, err = _sign_cli("--dataset", "customer")
    assert code == 1
    assert err.strip().count("\n") == 0 and "customer-v3" in err and "Traceback" not in err
    assert dict((r["model_version"], r["status"]) for r in rows)["customer-v3"] == "refused"
    assert _signature_row("customer-v3") is None

    # a new key (rotation): the same command re-signs what still matches the warehouse
    monkeypatch.setenv("OVERNIGHT_SIGNING_KEY", "b" * 64)
    with pytest.raises(ArtifactIntegrityError, match="does not verify"):
        load_model("customer-v1")
    code, rows, _ = _sign_cli()
    assert [r["status"] for r in rows] == ["signed", "signed", "refused"]
    load_model("customer-v1")
