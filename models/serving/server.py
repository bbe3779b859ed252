"""`overnight serve`: the API under gunicorn, with the hooks that keep logs and metrics whole.

Workers are forked without preloading the app, so each worker builds its own model store and
prediction log (and their threads) after the fork. On SIGTERM gunicorn stops each
worker gracefully and calls `worker_exit` in it, which compacts that worker's prediction log
(a worker killed outright leaves its log segments to the next worker or `overnight collect`); the
master's `child_exit` drops the dead worker's live metrics.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from gunicorn.app.base import BaseApplication

from models.serving.config import ServingConfig
from warehouse import get_settings


def _worker_exit(server: Any, worker: Any) -> None:
    from models.serving import app as serving_app

    for instance in serving_app.LIVE_APPS:
        instance.extensions["overnight"]["store"].stop()
        instance.extensions["overnight"]["log"].close()
        instance.extensions["overnight"]["costs"].close()


def _child_exit(server: Any, worker: Any) -> None:
    from models.serving.metrics import worker_exited

    worker_exited(worker.pid)


class ServingApplication(BaseApplication):
    """gunicorn's embedding API: our options, our app factory, no config file needed."""

    def __init__(self, config: ServingConfig, options: dict[str, Any]) -> None:
        self.serving_config = config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("worker_exit", _worker_exit)
        self.cfg.set("child_exit", _child_exit)

    def load(self) -> Any:
        """The app of one worker. BLAS and OpenMP pools are limited to one thread: requests are
        already served in parallel by workers and threads, and nested pools oversubscribe
        the cores (measured: 3x the single-record latency of a logistic regression).
        Everything loaded so far (libraries, models) is then moved out of the cyclic garbage
        collector's sight (`gc.freeze`): a 1000-record body allocates enough objects to set
        off collections that would walk that whole heap each time (measured: JSON parsing of
        such a body 4.3 ms before, 0.9 ms after)."""
        import gc

        from threadpoolctl import threadpool_limits

        from models.serving.app import create_app

        threadpool_limits(limits=1)
        app = create_app(self.serving_config)
        gc.freeze()
        return app


def gunicorn_options(host: str, port: int, workers: int, threads: int,
                     timeout: int = 60, worker_connections: int | None = None
                     ) -> dict[str, Any]:
    """gunicorn's settings. `worker_connections` (default: `threads`) caps the connections
    one gthread worker holds. gunicorn's own default (1000) lets the first worker to wake
    accept every connection of a burst and keep them alive: 8 keep-alive clients on 2 workers
    were measured landing 8 / 0 in some runs (one core idle, half the throughput). With the
    cap at `threads` a worker accepts a connection only when a thread is free and closes it
    after the answer (gunicorn keeps alive only connections beyond its threads, so keep-alive
    is switched off outright, as with sync workers): the kernel hands each new connection to
    a worker that can take it. Measured at 8 connections (customer): 572-578 req/s, p99
    29-31 ms, against 511-539 req/s, p99 37-44 ms with keep-alive and gunicorn's default."""
    connections = worker_connections or threads
    return {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
            "worker_class": "models.serving.worker.ServingWorker" if threads > 1 else "sync",
            "timeout": timeout,
            "worker_connections": connections,
            "keepalive": 2 if connections > threads else 0,
            "graceful_timeout": 30, "preload_app": False, "accesslog": None,
            "errorlog": "-", "loglevel": "warning"}


def prepare_metrics_dir() -> str:
    """A fresh multiprocess metrics folder for this server (stale files would add up)."""
    folder = get_settings().serving_dir / "prometheus"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return str(folder)


def serve(config: ServingConfig, *, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 2, threads: int = 4, worker_connections: int | None = None) -> None:
    """Run the API under gunicorn until SIGTERM / SIGINT (blocks)."""
    from models.serving.costs import interval_seconds
    from models.serving.edges import edge_settings
    from models.serving.wal import log_settings

    log_settings()          # a wrong OVERNIGHT_LOG_* is one line now, not a worker crash loop
    # the workers' home, as an absolute path: it no longer depends on their working directory
    # (and finding a file of the home needs no `os.getcwd` per request)
    os.environ["OVERNIGHT_HOME"] = str(get_settings().home.resolve())
    interval_seconds()      # and so is a wrong OVERNIGHT_COST_INTERVAL_SECONDS
    edge_settings()         # and OVERNIGHT_MAX_JSON_DEPTH, OVERNIGHT_CLIENT_SECONDS...
    prepare_metrics_dir()
    ServingApplication(config, gunicorn_options(
        host, port, workers, threads, worker_connections=worker_connections)).run()
