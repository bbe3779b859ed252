"""The HTTP edges of the prediction API, each answered with a 4xx JSON `{error, details}`:
nesting depth, over-limit bodies whatever the transfer encoding, admin authentication before
any parsing, bounded metric labels, the explain budget, capped details, mostly-missing records,
feedback for unknown prediction ids, a dataset whose first champion arrives after start.

Most run through Flask's test client on real champions; what depends on the WSGI server
(chunked bodies, the order of authentication and body reading) also runs under gunicorn."""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models.evaluation.explain import explain_prediction
from models.learning.text.explain import explain_article
from models.serving import prediction_ids
from models.serving.app import create_app
from models.serving.batch import score_file
from models.serving.config import ServingConfig
from models.serving.errors import MAX_DETAILS
from models.serving.explaining import explain_tabular, explain_texts
from monitoring.collect import collect_serving_logs
from tests.support.servers import overnight_serve
from tests.support.serving_support import data_home, records, register_champion
from warehouse import connect

OVERNIGHT = str(Path(sys.executable).parent / "overnight")
TOKEN = "s3cret"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 200_000


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """customer and news have champions at start; medical gets its first one later."""
    home = tmp_path_factory.mktemp("edges") / "home"
    with data_home(home, OVERNIGHT_ADMIN_TOKEN=TOKEN, OVERNIGHT_EXPLAIN_MAX_RECORDS="50",
                   OVERNIGHT_LOCK_TIMEOUT_SECONDS="20"):
        register_champion("customer")
        register_champion("news", algorithm="naive_bayes")
        app = create_app(ServingConfig(max_batch=1000, max_body_bytes=LIMIT,
                                       background=False))
        yield {"app": app, "client": app.test_client(), "home": home,
               "store": app.extensions["overnight"]["store"],
               "log": app.extensions["overnight"]["log"]}


def _raw(client: Any, url: str, data: str | bytes, **kwargs: Any) -> Any:
    kwargs.setdefault("content_type", "application/json")
    return client.post(url, data=data, **kwargs)


def _is_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.data[:300])
    body = response.json
    assert isinstance(body["error"], str) and isinstance(body["details"], list), body
    return body


# ------------------------------------------------------------------ nesting and size


@pytest.mark.parametrize("depth", [100_000, 2_000, 33])
def test_deeply_nested_json_is_400_not_500(edge, depth: int) -> None:
    body = _is_error(_raw(edge["client"], "/v1/datasets/customer/predict",
                          "[" * depth + "]" * depth), 400)
    assert "nested deeper than 32" in body["details"][0]["problem"], body


def test_nesting_within_the_limit_reaches_validation(edge) -> None:
    body = _is_error(_raw(edge["client"], "/v1/datasets/customer/predict",
                          "[" * 30 + "]" * 30), 422)
    assert body["error"] == "the request does not match the schema"


def test_over_limit_body_with_content_length_is_413(edge) -> None:
    big = json.dumps([{"age": 1, "pad": "x" * LIMIT}])
    body = _is_error(_raw(edge["client"], "/v1/datasets/customer/predict", big), 413)
    assert str(LIMIT) in body["error"]


# ------------------------------------------------------------------ admin authentication


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer"},
    {"Authorization": f"Bearer {TOKEN} extra"},
])
@pytest.mark.parametrize(("data", "content_type"), [
    ("{not json", "application/json"), ("a=1", "application/x-www-form-urlencoded"),
    ("[" * 50_000, "application/json"), ('{"dataset": "customer"}', "application/json"),
])
def test_admin_calls_are_authenticated_before_any_parsing(edge, headers, data,
                                                          content_type) -> None:
    for path in ("/v1/admin/traffic", "/v1/admin/reload"):
        response = edge["client"].post(path, data=data, content_type=content_type,
                                       headers=headers)
        body = _is_error(response, 401)
        assert body["details"][0]["field"] == "Authorization"
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_bearer_token_then_lets_the_body_be_checked(edge) -> None:
    client = edge["client"]
    assert client.post("/v1/admin/traffic", data="a=1", headers=ADMIN,
                       content_type="application/x-www-form-urlencoded").status_code == 415
    assert _raw(client, "/v1/admin/traffic", "{not json", headers=ADMIN).status_code == 400
    lower = client.post("/v1/admin/traffic", json={"dataset": "customer", "canary_share": 0},
                        headers={"Authorization": f"bearer {TOKEN}"})   # schemes ignore case
    assert lower.status_code == 200, lower.json
    assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 200   # no body


def test_method_not_allowed_names_the_allowed_methods(edge) -> None:
    response = edge["client"].get("/v1/feedback")
    _is_error(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


# ------------------------------------------------------------------ metric labels


def test_unknown_datasets_share_one_metric_label(edge) -> None:
    client = edge["client"]
    long_name = "q" * 3000
    assert client.post(f"/v1/datasets/{long_name}/predict", json={"x": 1}).status_code == 422
    assert client.get(f"/v1/datasets/{long_name}/model").status_code == 422
    assert client.post("/v1/datasets/weather/predict", json={"x": 1}).status_code == 404
    assert client.get(f"/no/such/{long_name}").status_code == 404
    text = client.get("/metrics").data.decode()
    assert "q" * 40 not in text and "weather" not in text
    assert 'dataset="_unknown",endpoint="/v1/datasets/<dataset>/predict",status="404"' in text
    assert 'endpoint="unmatched",status="404"' in text
    series = [line for line in text.splitlines() if line.startswith("overnight_requests_total{")]
    labels = {line.split('dataset="')[1].split('"')[0] for line in series}
    # The registry is per process: datasets that other tests served may be there too, but
    # never a name a client sent for a dataset that does not exist.
    assert "_unknown" in labels and not labels & {"weather", long_name}


# ------------------------------------------------------------------ explain budget


def test_explain_budget_is_enforced_with_a_clear_422(edge) -> None:
    client = edge["client"]
    over = _is_error(client.post("/v1/datasets/customer/predict?explain=true",
                                 json=records("customer", 51)), 422)
    assert "at most 50 records" in over["error"] and "51" in over["error"]
    assert over["details"][0]["field"] == "explain"
    within = client.post("/v1/datasets/customer/predict?explain=true",
                         json=records("customer", 50))
    assert within.status_code == 200
    assert all(p["explanation"]["predicted_class"] == p["class_name"]
               for p in within.json["predictions"])
    plain = client.post("/v1/datasets/customer/predict", json=records("customer", 200))
    assert plain.status_code == 200      # the budget only limits explained requests


def test_one_pass_explanations_equal_the_per_record_ones(edge) -> None:
    champion = edge["store"].get("customer")
    frame = pd.DataFrame(records("customer", 12), columns=champion.spec.feature_names)
    frame.loc[3, "income"] = None
    together = explain_tabular(champion.model, frame, champion.reference(), champion.spec)
    for i, explanation in enumerate(together):
        alone = explain_prediction(champion.model, frame.iloc[[i]], champion.reference(),
                                   champion.spec)
        assert explanation["predicted_class"] == alone["predicted_class"]
        assert explanation["probability"] == pytest.approx(alone["probability"])
        assert [c["feature"] for c in explanation["contributions"]] == \
            [c["feature"] for c in alone["contributions"]]
        assert [c["contribution"] for c in explanation["contributions"]] == pytest.approx(
            [c["contribution"] for c in alone["contributions"]])


def test_text_explanations_of_a_request_equal_the_per_article_ones(edge) -> None:
    champion = edge["store"].get("news")           # naive Bayes: word weights
    frame = pd.DataFrame(records("news", 8), columns=champion.spec.feature_names)
    together = explain_texts(champion.model, frame)
    for i, explanation in enumerate(together):
        alone = explain_article(champion.model, frame.iloc[[i]])
        assert explanation["method"] == alone["method"] == "coefficients"
        for key in ("predicted", "runner_up"):
            assert explanation[key] == alone[key]
        for key in ("toward_predicted", "toward_runner_up"):
            assert [e["word"] for e in explanation[key]] == [e["word"] for e in alone[key]]
            assert [e["contribution"] for e in explanation[key]] == pytest.approx(
                [e["contribution"] for e in alone[key]])


# ------------------------------------------------------------------ capped details


def test_details_are_capped_with_a_count_of_the_rest(edge) -> None:
    bad = [{**record, "age": "old"} for record in records("customer", 1000)]
    response = edge["client"].post("/v1/datasets/customer/predict", json=bad)
    body = _is_error(response, 422)
    assert len(body["details"]) == MAX_DETAILS
    assert body["details"][0]["field"] == "[0].age"
    assert body["more"] >= 1000 - MAX_DETAILS
    assert len(response.data) < 8_000          # was 443 KB for 1000 bad records


# ------------------------------------------------------------------ mostly missing records


def test_all_null_and_mostly_missing_records_need_review(edge) -> None:
    complete = records("customer", 1)[0]
    features = list(complete)
    empty = dict.fromkeys(features)
    mostly = {**complete, **dict.fromkeys(features[:5])}          # 5 of 9 missing
    some = {**complete, **dict.fromkeys(features[:4])}            # 4 of 9: not on its own
    response = edge["client"].post("/v1/datasets/customer/predict",
                                   json=[empty, mostly, some, complete])
    assert response.status_code == 200, response.json
    empty_p, mostly_p, some_p, complete_p = response.json["predictions"]
    assert empty_p["needs_review"] is True and empty_p["review_reason"] == "all features missing"
    assert mostly_p["needs_review"] is True
    assert mostly_p["review_reason"] == f"5 of {len(features)} features missing"
    for prediction in (some_p, complete_p):
        low = prediction["confidence"] < 0.6
        assert prediction["needs_review"] is low
        assert (prediction["review_reason"] or "").startswith("confidence") is low


def test_overnight_predict_flags_the_same_records(edge, tmp_path: Path) -> None:
    complete = records("customer", 1)[0]
    frame = pd.DataFrame([dict.fromkeys(complete), complete], columns=list(complete))
    source = tmp_path / "in.csv"
    frame.assign(row_id=[1, 2]).to_csv(source, index=False)
    result = score_file("customer", source, tmp_path / "out.csv", progress=False,
                        log_predictions=False)
    scored = pd.read_csv(result.output)
    assert result.scored == 2
    assert scored.loc[scored.row_id == 1, "needs_review"].item()
    assert scored.loc[scored.row_id == 1, "review_reason"].item() == "all features missing"


# ------------------------------------------------------------------ feedback ids


def test_feedback_for_unknown_prediction_ids_is_rejected_per_id(edge) -> None:
    client = edge["client"]
    answered = client.post("/v1/datasets/customer/predict", json=records("customer", 1))
    known = answered.json["predictions"][0]["prediction_id"]
    assert prediction_ids.is_ours(known)
    forged = known[:-4] + ("0000" if not known.endswith("0000") else "1111")
    unknown = ["p1", "0" * 32, forged, known.split(".")[0]]
    labels = [{"prediction_id": known, "label": "High"},
              *({"prediction_id": pid, "label": "High"} for pid in unknown)]
    response = client.post("/v1/feedback", json={"dataset": "customer", "labels": labels})
    assert response.status_code == 202, response.json
    assert response.json["accepted"] == 1
    rejected = response.json["rejected"]
    assert [r["prediction_id"] for r in rejected] == unknown
    assert [r["index"] for r in rejected] == [1, 2, 3, 4]
    assert all("unknown prediction id" in r["problem"] for r in rejected)
    edge["log"].flush()
    collect_serving_logs()
    with connect(read_only=True) as con:
        stored = {row[0] for row in con.execute("SELECT prediction_id FROM feedback").fetchall()}
    assert known in stored and not stored & set(unknown)


# ------------------------------------------------------------------ late champion


def test_a_dataset_whose_first_champion_arrives_later_is_served_after_reload(edge) -> None:
    client = edge["client"]
    body = records("medical", 2)
    assert client.post("/v1/datasets/medical/predict", json=body).status_code == 404
    assert client.get("/v1/models").status_code == 200
    version = register_champion("medical", rows=500)
    assert client.get("/v1/models").status_code == 200     # before the reload: still fine
    reload = client.post("/v1/admin/reload", headers=ADMIN)
    assert reload.status_code == 200
    assert f"medical:champion={version.model_version}" in reload.json["switched"]
    answer = client.post("/v1/datasets/medical/predict", json=body)
    assert answer.status_code == 200, answer.json
    assert {p["model_version"] for p in answer.json["predictions"]} == {version.model_version}
    bad = client.post("/v1/datasets/medical/predict", json=[{**body[0], "age": "old"}])
    assert _is_error(bad, 422)["details"][0]["field"] == "[0].age"   # its spec applies
    listing = client.get("/v1/models")
    assert listing.status_code == 200
    medical = [m for m in listing.json["models"] if m["dataset"] == "medical"]
    assert medical and medical[0]["input_schema"]["properties"]
    assert client.get("/v1/datasets/medical/model").status_code == 200
    loaded = edge["store"].get("medical")
    card, loaded.card = loaded.card, {**loaded.card, "metrics": None}   # a card it can't read
    try:
        listing = client.get("/v1/models")
        assert listing.status_code == 200
        assert "cannot describe" in listing.json["unavailable"]["medical"]
        assert {m["dataset"] for m in listing.json["models"]} == {"customer", "news"}
    finally:
        loaded.card = card


# ------------------------------------------------------------------ under gunicorn


@pytest.fixture(scope="module")
def gunicorn(edge) -> Iterator[str]:
    """`overnight serve` on the same home, 0.1 MB body limit, 3 s per request per client."""
    env = {**os.environ, "OVERNIGHT_HOME": str(edge["home"]), "OVERNIGHT_ADMIN_TOKEN": TOKEN,
           "OVERNIGHT_CLIENT_SECONDS": str(CLIENT_SECONDS)}
    with overnight_serve(["--workers", "1", "--threads", "2", "--max-body-mb", "0.1",
                          "--dataset", "customer"], env, edge["home"].parent) as (_, url):
        yield url.removeprefix("http://")


def _send(address: str, path: str, chunks: list[bytes] | bytes, headers: dict[str, str]
          ) -> tuple[int, dict[str, Any]]:
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        if isinstance(chunks, list):
            connection.request("POST", path, body=iter(chunks), encode_chunked=True,
                               headers={"Transfer-Encoding": "chunked", **headers})
        else:
            connection.request("POST", path, body=chunks, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


JSON = {"Content-Type": "application/json"}
CLIENT_SECONDS = 3


def test_chunked_bodies_under_gunicorn_are_read_and_limited(gunicorn: str) -> None:
    payload = json.dumps(records("customer", 3)).encode()
    status, body = _send(gunicorn, "/v1/datasets/customer/predict",
                         [payload[:50], payload[50:]], JSON)
    assert status == 200 and len(body["predictions"]) == 3, body
    limit = int(0.1 * 1024 * 1024)
    big = json.dumps([{"pad": "x" * 1000}] * 200).encode()        # ~200 KB, over 0.1 MB
    assert len(big) > limit
    chunks = [big[i:i + 8192] for i in range(0, len(big), 8192)]
    status, body = _send(gunicorn, "/v1/datasets/customer/predict", chunks, JSON)
    assert status == 413 and str(limit) in body["error"], body
    status, body = _send(gunicorn, "/v1/datasets/customer/predict", big, JSON)
    assert status == 413, body
    deep = b"[" * 100_000 + b"]" * 100_000
    status, body = _send(gunicorn, "/v1/datasets/customer/predict", deep[:limit - 1], JSON)
    assert status == 400 and "nested deeper" in body["details"][0]["problem"], body


def test_admin_auth_comes_first_under_gunicorn(gunicorn: str) -> None:
    started = time.monotonic()
    for headers in ({}, {"Authorization": TOKEN}):
        status, body = _send(gunicorn, "/v1/admin/traffic", b"a=1",
                             {"Content-Type": "text/plain", **headers})
        assert status == 401 and body["details"][0]["field"] == "Authorization", body
        status, body = _send(gunicorn, "/v1/admin/traffic", [b"{not", b" json"], headers)
        assert status == 401, body
    status, body = _send(gunicorn, "/v1/admin/traffic", b"a=1",
                         {"Content-Type": "text/plain", **ADMIN})
    assert status == 415, body
    assert time.monotonic() - started < 20


def test_more_clients_than_threads_are_all_answered(gunicorn: str) -> None:
    """The worker holds at most --threads connections (see `server.gunicorn_options`) and
    closes each after its answer: clients beyond that wait in the listen backlog, and are
    answered, and a client that reuses its connection object simply reconnects."""
    from concurrent.futures import ThreadPoolExecutor

    host, port = gunicorn.split(":")
    payload = json.dumps(records("customer", 1)[0]).encode()

    def client(_: int) -> list[tuple[int, str | None]]:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        answers = []
        try:
            for _ in range(3):
                connection.request("POST", "/v1/datasets/customer/predict", body=payload,
                                   headers=JSON)
                response = connection.getresponse()
                response.read()
                answers.append((response.status, response.getheader("Connection")))
        finally:
            connection.close()
        return answers

    with ThreadPoolExecutor(max_workers=12) as pool:
        answered = [a for answers in pool.map(client, range(12)) for a in answers]
    assert answered == [(200, "close")] * 36


def test_silent_connections_do_not_stop_the_others(gunicorn: str) -> None:
    """Clients that connect and send nothing: gunicorn alone gives each a thread that waits
    5 s for a first byte (six of them delayed the next request of a 2-thread worker by 15 s).
    They wait in the worker's poller instead, outside its connection cap
    (`models.serving.worker`), so the next client is answered at once; each is closed after
    `OVERNIGHT_CLIENT_SECONDS` (3 here)."""
    import socket

    host, port = gunicorn.split(":")
    silent = [socket.create_connection((host, int(port)), timeout=30) for _ in range(6)]
    try:
        time.sleep(0.3)                                 # all six accepted and waiting
        payload = json.dumps(records("customer", 1)[0]).encode()
        started = time.monotonic()
        for _ in range(3):
            status, body = _send(gunicorn, "/v1/datasets/customer/predict", payload, JSON)
            assert status == 200 and len(body["predictions"]) == 1, body
        assert time.monotonic() - started < 1.5, "answered behind six silent connections"
        for sock in silent:                             # each closed after its time
            assert sock.recv(1) == b""
        assert time.monotonic() - started < CLIENT_SECONDS + 10
    finally:
        for sock in silent:
            sock.close()


@pytest.mark.parametrize("route, headers", [
    ("/v1/datasets/customer/predict", JSON),                          # 413: over the limit
    ("/v1/datasets/customer/predict", {"Content-Type": "text/plain"}),  # 415: never read
    ("/v1/admin/traffic", JSON),                                      # 401: never read
])
def test_a_client_still_sending_a_refused_body_reads_its_answer(gunicorn: str, route: str,
                                                                  headers: dict[str, str]
                                                                  ) -> None:
    """An answer given before the body is read must reach a client that is still sending it
    (a slow link). The connection closes after each answer, and closing a socket with unread
    bytes makes the kernel answer what arrives next with a reset, which the client sees
    instead of the answer (gunicorn's own linger reads 64 KB at most). Here the client sends
    twice the 0.1 MB limit, pauses while the server answers, then sends the rest."""
    limit = int(0.1 * 1024 * 1024)
    big = b"[" + b" " * (5 * limit) + b"]"

    def slow_link() -> Iterator[bytes]:
        for start in range(0, len(big), 8192):
            if start == 2 * limit // 8192 * 8192:
                time.sleep(0.5)
            yield big[start:start + 8192]

    expected = {"/v1/admin/traffic": 401}.get(route, 413 if headers is JSON else 415)
    host, port = gunicorn.split(":")
    for chunked in (True, False):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request("POST", route, body=slow_link(), encode_chunked=chunked,
                               headers={**headers, **({"Transfer-Encoding": "chunked"}
                                                      if chunked else
                                                      {"Content-Length": str(len(big))})})
            response = connection.getresponse()
            answer = json.loads(response.read())
        finally:
            connection.close()
        assert response.status == expected and answer["error"], (chunked, answer)


@pytest.mark.parametrize("header", [b"", b"Connection: close\r\n"])
def test_clients_holding_their_sockets_open_do_not_stall_the_worker(gunicorn: str,
                                                                     header: bytes) -> None:
    """A client that gets its answer and keeps its socket open must not hold up the others:
    gunicorn's own close waits up to 2 s for the client's side, on the loop that serves every
    connection of the worker (`models.serving.worker`). Three such clients stalled the next
    request for 4 s; here all four are answered long before one such wait would end."""
    import socket

    host, port = gunicorn.split(":")
    payload = json.dumps(records("customer", 1)[0]).encode()
    request = (b"POST /v1/datasets/customer/predict HTTP/1.1\r\nHost: x\r\n" + header +
               b"Content-Type: application/json\r\nContent-Length: " +
               str(len(payload)).encode() + b"\r\n\r\n" + payload)
    held = []
    started = time.monotonic()
    try:
        for _ in range(3):
            sock = socket.create_connection((host, int(port)), timeout=30)
            sock.sendall(request)
            assert sock.recv(64).startswith(b"HTTP/1.1 200"), "the held client is answered"
            held.append(sock)
        status, body = _send(gunicorn, "/v1/datasets/customer/predict", payload, JSON)
        waited = time.monotonic() - started
        assert status == 200 and len(body["predictions"]) == 1, body
        assert waited < 1.5, f"four requests, three of them held open, took {waited:.1f} s"
    finally:
        for sock in held:
            sock.close()


def test_clients_dripping_their_requests_are_cut_off(gunicorn: str) -> None:
    """Slowloris: as many clients as the worker has threads send a request a byte at a time.
    gunicorn alone reads such a request for as long as the bytes keep coming, so nobody else
    is answered; with `OVERNIGHT_CLIENT_SECONDS` (3 here) each dripping client is reset after
    it, and the next client is answered."""
    import socket
    import threading

    host, port = gunicorn.split(":")
    drippers = [socket.create_connection((host, int(port)), timeout=30) for _ in range(2)]
    stop = threading.Event()
    cut = []

    def drip(sock: socket.socket) -> None:
        sock.sendall(b"POST /v1/datasets/customer/predict HTTP/1.1\r\nHost: x\r\n")
        while not stop.wait(0.2):
            try:
                sock.sendall(b"X")
            except OSError:
                cut.append(sock)
                return

    threads = [threading.Thread(target=drip, args=(sock,)) for sock in drippers]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)                             # both dripping, both threads taken
        started = time.monotonic()
        payload = json.dumps(records("customer", 1)[0]).encode()
        status, body = _send(gunicorn, "/v1/datasets/customer/predict", payload, JSON)
        assert status == 200 and len(body["predictions"]) == 1, body
        assert time.monotonic() - started < CLIENT_SECONDS + 10
        deadline = time.monotonic() + 10
        while len(cut) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(cut) == 2, "every dripping client is cut off"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        for sock in drippers:
            sock.close()


def test_a_body_that_stops_arriving_is_408(gunicorn: str) -> None:
    import socket

    host, port = gunicorn.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v1/datasets/customer/predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{")
        started = time.monotonic()
        answer = b""
        while part := sock.recv(4096):
            answer += part
        waited = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert f"within {CLIENT_SECONDS} s" in json.loads(body)["error"]
    assert CLIENT_SECONDS - 1 < waited < CLIENT_SECONDS + 10


def test_a_silent_connection_does_not_hold_a_stopping_server(edge) -> None:
    """A connection waiting for its first byte may wait `OVERNIGHT_CLIENT_SECONDS` (60 here)
    while the server runs; a stopping worker gives it gunicorn's 2 s for kept-alive
    connections, not the whole wait (it took gunicorn's 30 s graceful timeout before)."""
    import signal
    import socket

    env = {**os.environ, "OVERNIGHT_HOME": str(edge["home"]), "OVERNIGHT_CLIENT_SECONDS": "60"}
    with overnight_serve(["--workers", "1", "--threads", "2", "--dataset", "customer"], env,
                         edge["home"].parent) as (proc, url):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30):
            time.sleep(0.5)                             # accepted, waiting for a first byte
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            assert time.monotonic() - started < 15
