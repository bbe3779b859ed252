"""gunicorn's settings for `overnight serve`: a worker holds at most as many connections as
it has threads unless told otherwise, and keep-alive is on only when there is room for it."""

from __future__ import annotations

from models.serving.server import gunicorn_options


def test_a_worker_holds_as_many_connections_as_threads_by_default() -> None:
    options = gunicorn_options("127.0.0.1", 8000, workers=2, threads=4)
    assert options["worker_class"] == "models.serving.worker.ServingWorker"   # gthread
    assert options["worker_connections"] == 4
    assert options["keepalive"] == 0        # gunicorn keeps alive only beyond its threads


def test_more_connections_than_threads_keep_connections_alive() -> None:
    options = gunicorn_options("127.0.0.1", 8000, workers=2, threads=4,
                               worker_connections=1000)
    assert options["worker_connections"] == 1000
    assert options["keepalive"] == 2


def test_one_thread_is_the_sync_worker() -> None:
    options = gunicorn_options("127.0.0.1", 8000, workers=2, threads=1)
    assert options["worker_class"] == "sync" and options["keepalive"] == 0
