"""Prometheus metrics of the serving API, correct across gunicorn's worker processes.

`overnight serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before the workers start,
so prometheus_client keeps each worker's values in files and `/metrics` adds them up; in a
single process (tests, `flask run`) the default registry is used.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("overnight_requests_total", "API requests by dataset, endpoint and status",
                   ["dataset", "endpoint", "status"])
LATENCY = Histogram("overnight_request_seconds", "API request latency by dataset and endpoint",
                    ["dataset", "endpoint"],
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
PREDICTIONS = Counter("overnight_predictions_total", "Predictions by dataset, class and role",
                      ["dataset", "model_version", "predicted_class", "role"])
SCORING_CALLS = Counter("overnight_scoring_calls_total",
                        "Model calls by dataset (requests batched together make one call)",
                        ["dataset"])
SCORED_FRAMES = Counter("overnight_scored_requests_total",
                        "Requests (and shadow scorings) scored, by dataset: divided by the "
                        "calls, how many requests one model call served", ["dataset"])
MODEL_INFO = Gauge("overnight_model_info", "The model version a worker serves (value 1)",
                   ["dataset", "alias", "model_version"], multiprocess_mode="liveall")
RELOADS = Counter("overnight_model_reloads_total", "Model switches picked up by workers")
REFUSED = Counter("overnight_artifacts_refused_total", "Artifacts refused on load",
                  ["dataset"])


def render() -> tuple[bytes, str]:
    """The exposition text of every worker's metrics (or this process's)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """Called by gunicorn's master when a worker exits (drops its live gauges)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
