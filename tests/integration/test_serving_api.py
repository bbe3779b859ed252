"""The prediction API through Flask's test client, on real small champions in a real data home:
every endpoint, every kind of bad input, shadow and canary traffic, hot reload and refusal of a
tampered artifact, and the logs that reach the warehouse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.registry.versions import promote, rollback, set_alias
from models.serving.app import create_app, routed_to_challenger
from models.serving.config import ServingConfig
from monitoring.collect import collect_serving_logs
from tests.support.serving_support import data_home, records, register_champion
from warehouse import connect
from warehouse.reports import run_report

DATASETS = ["customer", "medical", "news"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """customer and news have champions (customer also a challenger); medical has none."""
    home = tmp_path_factory.mktemp("serving") / "home"
    with data_home(home, OVERNIGHT_LOCK_TIMEOUT_SECONDS="20", OVERNIGHT_ADMIN_TOKEN="s3cret"):
        champion = register_champion("customer")
        challenger = register_champion("customer", algorithm="random_forest",
                                       promote_it=False, params={"n_estimators": 20})
        set_alias("customer", "challenger", challenger.model_version, reason="test")
        register_champion("news", algorithm="naive_bayes")
        app = create_app(ServingConfig(datasets=DATASETS, max_batch=5, max_body_bytes=64_000,
                                       background=False))
        yield {"app": app, "client": app.test_client(), "home": home,
               "champion": champion.model_version, "challenger": challenger.model_version,
               "store": app.extensions["overnight"]["store"],
               "log": app.extensions["overnight"]["log"]}


def _post(client: Any, url: str, body: Any, **kwargs: Any) -> Any:
    return client.post(url, json=body, **kwargs)


def test_one_record_gets_a_complete_prediction(served) -> None:
    response = _post(served["client"], "/v1/datasets/customer/predict", records("customer", 1)[0])
    assert response.status_code == 200, response.json
    body = response.json
    assert body["dataset"] == "customer" and response.headers["X-Request-ID"] == body["request_id"]
    [prediction] = body["predictions"]
    assert prediction["model_version"] == served["champion"]
    assert prediction["alias"] == "champion"
    assert set(prediction["probabilities"]) == {"Low", "Medium", "High"}
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-4
    assert ["Low", "Medium", "High"][prediction["class_index"]] == prediction["class_name"]
    assert prediction["confidence"] == pytest.approx(
        prediction["probabilities"][prediction["class_name"]], abs=1e-5)
    assert prediction["needs_review"] == (prediction["confidence"] < 0.6)
    assert "explanation" not in prediction


def test_a_list_of_records_gets_one_prediction_each_with_unique_ids(served) -> None:
    response = _post(served["client"], "/v1/datasets/news/predict", records("news", 4),
                     headers={"X-Request-ID": "client-req-1"})
    assert response.status_code == 200, response.json
    assert response.json["request_id"] == "client-req-1"
    ids = [p["prediction_id"] for p in response.json["predictions"]]
    assert len(ids) == 4 and len(set(ids)) == 4


def test_explain_adds_the_model_librarys_explanation(served) -> None:
    client = served["client"]
    tabular = _post(client, "/v1/datasets/customer/predict?explain=true", records("customer", 1))
    explanation = tabular.json["predictions"][0]["explanation"]
    assert explanation["predicted_class"] == tabular.json["predictions"][0]["class_name"]
    assert explanation["contributions"] and "feature" in explanation["contributions"][0]
    text = _post(client, "/v1/datasets/news/predict?explain=true", records("news", 1))
    words = text.json["predictions"][0]["explanation"]
    assert words["predicted"] == text.json["predictions"][0]["class_name"]
    assert words["toward_predicted"]


def _bad(field: str, value: Any) -> dict[str, Any]:
    record = records("customer", 1)[0]
    record[field] = value
    return record


def _without(field: str) -> dict[str, Any]:
    record = records("customer", 1)[0]
    del record[field]
    return record


def test_an_answer_does_not_depend_on_how_its_record_was_sent(served) -> None:
    """Alone or in a list (so also alone or batched with other requests by the worker's
    shared scorer) the same answer, field for field, apart from the ids and the last bits of
    `confidence` (BLAS sums a matrix of one row and of many in different orders)."""
    sent = records("customer", 5, seed=21)
    sent[2]["age"] = int(sent[2]["age"])            # an integer where a float goes: accepted
    together = _post(served["client"], "/v1/datasets/customer/predict", sent).json
    alone = [_post(served["client"], "/v1/datasets/customer/predict", r).json for r in sent]

    def answer(p: dict[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in p.items() if k != "prediction_id"},
                "confidence": pytest.approx(p["confidence"], rel=1e-12)}

    assert [answer(p) for p in together["predictions"]] == [
        answer(a["predictions"][0]) for a in alone]


@pytest.mark.parametrize(("body", "status", "field", "words"), [
    (_bad("age", "forty"), 422, "age", "valid number"),
    (_bad("age", True), 422, "age", "valid number"),
    (_without("region"), 422, "region", "required"),
    ({**records("customer", 1)[0], "shoe_size": 42}, 422, "shoe_size", "not permitted"),
    (_bad("age", 500), 422, "age", "less than or equal to 80"),
    (_bad("region", "mars"), 422, "region", "north"),
    ([], 422, "body", "at least 1 item"),
    (records("customer", 6), 422, "body", "at most 5 items"),
    ([records("customer", 1)[0], _bad("gender", 3)], 422, "[1].gender", "'female' or 'male'"),
    ("a string", 422, "body", "expected a JSON object"),
])
def test_bad_records_get_422_naming_the_field(served, body, status, field, words) -> None:
    response = _post(served["client"], "/v1/datasets/customer/predict", body)
    assert response.status_code == status, response.json
    details = response.json["details"]
    assert any(d["field"] == field and words in d["problem"] for d in details), details


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused(served, literal) -> None:
    record = records("customer", 1)[0]
    raw = json.dumps({k: v for k, v in record.items() if k != "age"})
    raw = raw[:-1] + f', "age": {literal}}}'     # JSON extensions Python's parser accepts
    response = served["client"].post("/v1/datasets/customer/predict", data=raw,
                                     content_type="application/json")
    assert response.status_code == 422, response.json
    assert any(d["field"] == "age" and "finite" in d["problem"]
               for d in response.json["details"]), response.json


@pytest.mark.parametrize(("data", "content_type", "status", "words"), [
    ("{not json", "application/json", 400, "not valid JSON"),
    (b"\xff\xfe", "application/json", 400, "not valid JSON"),
    ("age=3", "application/x-www-form-urlencoded", 415, "Content-Type"),
    ("[" + ",".join(['{"a": "' + "x" * 1000 + '"}'] * 80) + "]", "application/json", 413,
     "larger than"),
])
def test_unreadable_bodies_get_4xx_json(served, data, content_type, status, words) -> None:
    response = served["client"].post("/v1/datasets/customer/predict", data=data,
                                     content_type=content_type)
    assert response.status_code == status
    assert words in response.json["error"] or words in json.dumps(response.json)


def test_unknown_dataset_is_404_and_dataset_without_champion_503(served) -> None:
    client = served["client"]
    unknown = _post(client, "/v1/datasets/weather/predict", {"x": 1})
    assert unknown.status_code == 404 and "weather" in unknown.json["error"]
    missing = _post(client, "/v1/datasets/medical/predict", records("medical", 1))
    assert missing.status_code == 503 and "medical" in missing.json["error"]
    assert client.get("/v1/datasets/weather/model").status_code == 404
    assert client.get("/v1/datasets/medical/model").status_code == 503
    assert client.get("/health").json == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 503 and set(ready.json["problems"]) == {"medical"}
    assert ready.json["serving"] == {"customer": served["champion"], "news": "news-v1"}


def test_models_endpoints_describe_what_is_served(served) -> None:
    client = served["client"]
    listing = client.get("/v1/models").json
    assert {m["dataset"] for m in listing["models"]} == {"customer", "news"}
    assert "medical" in listing["unavailable"]
    model = client.get("/v1/datasets/customer/model").json
    assert model["model_version"] == served["champion"]
    assert model["algorithm"] == "logistic_regression"
    assert model["classes"] == ["Low", "Medium", "High"]
    assert model["challenger"] == served["challenger"]
    assert model["trained_at"] and model["metrics"]["accuracy"] == 0.5
    assert set(model["input_schema"]["properties"]) >= {"age", "region", "gender"}


def test_openapi_document_and_docs_page(served) -> None:
    client = served["client"]
    document = client.get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    assert "/v1/datasets/customer/predict" in document["paths"]
    schemas = document["components"]["schemas"]
    assert schemas["CustomerRecord"]["properties"]["age"]["anyOf"][0]["maximum"] == 80.0
    assert "NewsRecord" in schemas
    page = client.get("/docs/swagger")
    assert page.status_code == 200 and b"swagger" in page.data.lower()


def _scoring_counts(client) -> tuple[float, float]:
    text = client.get("/metrics").data.decode()
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith(("overnight_scoring_calls_total{",
                                  "overnight_scored_requests_total{"))}
    return (values.get('overnight_scoring_calls_total{dataset="customer"}', 0.0),
            values.get('overnight_scored_requests_total{dataset="customer"}', 0.0))


def test_metrics_count_requests_and_predictions(served) -> None:
    client = served["client"]
    calls, scored = _scoring_counts(client)
    _post(client, "/v1/datasets/customer/predict", records("customer", 2))
    assert _scoring_counts(client) == (calls + 1, scored + 1)   # one request, one model call
    text = client.get("/metrics").data.decode()
    assert 'overnight_requests_total{dataset="customer",endpoint="/v1/datasets/customer/predict"' \
        ',status="200"}' in text
    assert "overnight_predictions_total{" in text and 'role="served"' in text
    assert f'overnight_model_info{{alias="champion",dataset="customer",model_version="' \
        f'{served["champion"]}"}} 1.0' in text
    assert "overnight_request_seconds_bucket" in text


def test_admin_calls_need_the_token(served, monkeypatch: pytest.MonkeyPatch) -> None:
    client = served["client"]
    body = {"dataset": "customer", "canary_share": 0.5}
    assert client.post("/v1/admin/traffic", json=body).status_code == 401
    assert client.post("/v1/admin/reload", json={},
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    monkeypatch.delenv("OVERNIGHT_ADMIN_TOKEN")
    refused = client.post("/v1/admin/reload", json={},
                          headers={"Authorization": "Bearer s3cret"})
    assert refused.status_code == 403 and "OVERNIGHT_ADMIN_TOKEN" in refused.json["error"]


ADMIN = {"Authorization": "Bearer s3cret"}


def test_shadow_scores_with_the_challenger_but_answers_with_the_champion(served) -> None:
    client, log = served["client"], served["log"]
    log.flush()
    on = client.post("/v1/admin/traffic", json={"dataset": "customer", "canary_share": 0,
                                                "shadow": True}, headers=ADMIN)
    assert on.status_code == 200 and on.json["challenger"] == served["challenger"]
    try:
        response = _post(client, "/v1/datasets/customer/predict", records("customer", 3))
        assert {p["model_version"] for p in response.json["predictions"]} == {served["champion"]}
        log.flush()
        collect_serving_logs()
        with connect(read_only=True) as con:
            rows = con.execute("SELECT role, model_version FROM predictions"
                               " WHERE request_id = ? ORDER BY role",
                               [response.json["request_id"]]).fetchall()
            assert [r[0] for r in rows] == ["served"] * 3 + ["shadow"] * 3
            assert {r[1] for r in rows[3:]} == {served["challenger"]}
            agreement = run_report(con, "shadow_agreement", {"dataset": "customer"})
        assert agreement["pairs"].sum() == 3
        assert agreement["shadow"].tolist() == [served["challenger"]]
        assert 0 <= agreement["agreement"].iloc[0] <= 1
    finally:
        client.post("/v1/admin/traffic", json={"dataset": "customer", "canary_share": 0},
                    headers=ADMIN)


def test_canary_share_routes_by_a_stable_key(served) -> None:
    client = served["client"]
    client.post("/v1/admin/traffic", json={"dataset": "customer", "canary_share": 0.5},
                headers=ADMIN)
    try:
        seen = {}
        for key in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"):
            answers = {_post(client, "/v1/datasets/customer/predict", records("customer", 1),
                             headers={"X-Routing-Key": key}).json["predictions"][0]["alias"]
                       for _ in range(2)}
            assert len(answers) == 1        # the same key always lands on the same model
            seen[key] = answers.pop()
            assert (seen[key] == "challenger") == routed_to_challenger(key, 0.5)
        assert set(seen.values()) == {"champion", "challenger"}
    finally:
        client.post("/v1/admin/traffic", json={"dataset": "customer", "canary_share": 0},
                    headers=ADMIN)
    shares = [routed_to_challenger(str(i), 0.2) for i in range(5000)]
    assert 0.17 < sum(shares) / len(shares) < 0.23
    assert not any(routed_to_challenger(str(i), 0.0) for i in range(100))


def test_traffic_call_is_validated(served) -> None:
    client = served["client"]
    bad = client.post("/v1/admin/traffic", json={"dataset": "customer", "canary_share": 2},
                      headers=ADMIN)
    assert bad.status_code == 422 and bad.json["details"][0]["field"] == "canary_share"
    unknown = client.post("/v1/admin/traffic", json={"dataset": "x", "canary_share": 0.1},
                          headers=ADMIN)
    assert unknown.status_code == 404


def test_feedback_is_landed_and_validated(served) -> None:
    client = served["client"]
    predicted = _post(client, "/v1/datasets/customer/predict", records("customer", 2)).json
    labels = [{"prediction_id": p["prediction_id"], "label": "High"}
              for p in predicted["predictions"]]
    accepted = client.post("/v1/feedback", json={"dataset": "customer", "labels": labels})
    assert accepted.status_code == 202
    assert accepted.json == {"accepted": 2, "rejected": []}
    wrong = client.post("/v1/feedback", json={"dataset": "customer", "labels": [
        {"prediction_id": labels[0]["prediction_id"], "label": "Gigantic"}]})
    assert wrong.status_code == 202 and wrong.json["accepted"] == 0
    assert wrong.json["rejected"][0]["index"] == 0
    assert "'Gigantic' is not one of Low, Medium, High" in wrong.json["rejected"][0]["problem"]
    assert client.post("/v1/feedback", json={"dataset": "nope", "labels": labels}
                       ).status_code == 404
    assert client.post("/v1/feedback", json={"dataset": "customer", "labels": []}
                       ).status_code == 422
    served["log"].flush()
    counts = collect_serving_logs()
    assert counts["feedback"] >= 2 and counts["predictions"] > 0
    with connect(read_only=True) as con:
        joined = con.execute(
            "SELECT count(*) FROM predictions JOIN feedback USING (prediction_id)"
            " WHERE list_contains(?, prediction_id)",
            [[item["prediction_id"] for item in labels]]).fetchone()[0]
    assert joined == 2


def test_promotion_is_followed_and_a_tampered_artifact_refused(served) -> None:
    client, store = served["client"], served["store"]
    newer = register_champion("customer", seed=3, promote_it=False)
    promote("customer", newer.model_version, reason="test reload")
    assert store.poll_once() == [f"customer:champion={newer.model_version}"]
    answer = _post(client, "/v1/datasets/customer/predict", records("customer", 1)).json
    assert answer["predictions"][0]["model_version"] == newer.model_version

    tampered = register_champion("customer", seed=4, promote_it=False)
    with Path(tampered.artifact_path).open("ab") as handle:
        handle.write(b"tampered")
    promote("customer", tampered.model_version, reason="test tamper")
    assert store.poll_once() == []
    answer = _post(client, "/v1/datasets/customer/predict", records("customer", 1)).json
    assert answer["predictions"][0]["model_version"] == newer.model_version   # old one serves
    assert client.get("/ready").json["serving"]["customer"] == newer.model_version
    collect_serving_logs()
    with connect(read_only=True) as con:
        alert = con.execute("SELECT severity, message FROM alerts WHERE kind = 'artifact_refused'"
                            " AND dataset = 'customer'").fetchall()
    assert len(alert) == 1 and alert[0][0] == "critical"
    assert tampered.model_version in alert[0][1] and "sha256" in alert[0][1]
    assert newer.model_version in alert[0][1]
    rollback("customer", reason="undo the tampered promotion")
    assert store.poll_once() == []          # back to the version it already serves
    assert store.get("customer").model_version == newer.model_version


def test_an_ensemble_champion_is_served_like_any_model(warehouse_path) -> None:
    version = register_champion("customer", algorithm="dynamic_selection", rows=500)
    app = create_app(ServingConfig(background=False))
    response = app.test_client().post("/v1/datasets/customer/predict?explain=true",
                                      json=records("customer", 3))
    assert response.status_code == 200, response.json
    predictions = response.json["predictions"]
    assert {p["model_version"] for p in predictions} == {version.model_version}
    assert all(p["explanation"]["predicted_class"] == p["class_name"] for p in predictions)
