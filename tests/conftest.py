"""Shared fixtures: every test gets its own data home (a real DuckDB file in tmp_path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from warehouse import connect, get_settings, migrate


@pytest.fixture(scope="session", autouse=True)
def signing_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A per-session artifact signing key and config folder, in os.environ so that servers,
    Metaflow steps and other subprocesses share them: no test touches ~/.config."""
    import secrets

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVERNIGHT_SIGNING_KEY", secrets.token_hex(32))
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
        patch.delenv("OVERNIGHT_SIGNING_KEY_FILE", raising=False)
        yield


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data home, selected through the environment as a user would."""
    path = tmp_path / "home"
    monkeypatch.setenv("OVERNIGHT_HOME", str(path))
    monkeypatch.setenv("OVERNIGHT_LOCK_TIMEOUT_SECONDS", "20")
    return path


@pytest.fixture
def warehouse_path(home: Path) -> Iterator[Path]:
    """A migrated warehouse file in the test's data home."""
    settings = get_settings()
    settings.ensure_dirs()
    with connect() as con:
        migrate(con)
    yield settings.warehouse_path


@pytest.fixture(scope="session")
def board_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home filled by two short nights (and synthetic served predictions), built once
    for the status board's tests, which only read it (tests/support/board_fixture.py)."""
    from tests.support.board_fixture import fill_board_home

    return fill_board_home(tmp_path_factory.mktemp("board"))
