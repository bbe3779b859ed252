"""One settings object for the whole platform.

It lives in `warehouse` because that is the bottom layer every other package may import.
Every path the platform uses is derived from one data home folder, so a single environment
variable (`OVERNIGHT_HOME`) moves the warehouse, artifacts, reports, prediction landing files
and the Metaflow datastore together. All variables share the prefix `OVERNIGHT_`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where everything lives and how patient writers are with the warehouse lock."""

    model_config = SettingsConfigDict(env_prefix="OVERNIGHT_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.cwd() / "overnight-data",
        description="Data home: warehouse, artifacts, reports, landing files, Metaflow datastore.",
    )
    lock_timeout_seconds: float = Field(
        default=60.0, gt=0, description="How long a connection waits for the warehouse lock."
    )
    seed: int = Field(default=42, description="Default random seed for generators and training.")
    webhook_url: str | None = Field(
        default=None, description="URL that receives each new alert as JSON (POST).")
    policy_file: Path | None = Field(
        default=None, description="Retraining policy file (default: monitoring/policies.yaml).")
    admin_token: str | None = Field(
        default=None, description="Token that admin calls of the serving API must present "
        "(Authorization: Bearer ...); without one, admin calls are refused.")
    signing_key: SecretStr | None = Field(
        default=None, description="Key that signs and verifies model artifacts (hex, base64 or "
        "any string of >= 32 bytes); without it, the key file below is used.")
    signing_key_file: Path | None = Field(
        default=None, description="Signing key file (default: $XDG_CONFIG_HOME/overnight/"
        "signing.key or ~/.config/overnight/signing.key, created 0600 on first use); never "
        "inside the data home.")

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def metaflow_dir(self) -> Path:
        return self.home / "metaflow"

    @property
    def serving_dir(self) -> Path:
        """What the serving processes read instead of the warehouse (aliases, traffic)."""
        return self.home / "serving"

    def locations(self) -> dict[str, Path]:
        """Every folder or file the platform writes, by name (what `overnight` prints)."""
        return {
            "home": self.home,
            "warehouse": self.warehouse_path,
            "artifacts": self.artifacts_dir,
            "reports": self.reports_dir,
            "landing": self.landing_dir,
            "metaflow": self.metaflow_dir,
            "serving": self.serving_dir,
        }

    def ensure_dirs(self) -> None:
        for path in (self.home, self.artifacts_dir, self.reports_dir, self.landing_dir,
                     self.metaflow_dir, self.serving_dir):
            path.mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    """Read settings from the environment now (not cached: tests and CLI flags change it)."""
    return Settings()
