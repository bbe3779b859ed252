"""The settings of one serving process (kept apart from the app so that importing them
imports neither Flask nor prometheus_client, which must see its multiprocess folder first)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ServingConfig(BaseModel):
    """Limits and timings of one serving process (from `overnight serve` options)."""

    datasets: list[str] | None = Field(default=None, description="Default: every dataset "
                                       "with a champion in the manifest at start.")
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    flush_rows: int = Field(default=5000, ge=1)     # a roll opens (and fsyncs) a segment
    flush_seconds: float = Field(default=2.0, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)
    background: bool = Field(default=True, description="Start the reload and flush threads.")
