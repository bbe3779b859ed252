"""The status board in a real browser: `streamlit run` on a free loopback port, every page
opened in headless Chromium (Debian's package, through Playwright), a screenshot of each saved
to the test output (BOARD_SCREENSHOTS, or the test's tmp folder); and the `overnight board`
command kept answering while another process holds and writes the warehouse."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from monitoring.board.data import BUSY_MESSAGE
from monitoring.board.launch import board_command
from tests.support.board_fixture import CHAMPION, LAST_NIGHT, writer_holding
from tests.support.servers import free_port, stop, wait_until_up

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# (url path, title, whether the champion's version is in the page's text outside tables,
# which Streamlit draws on a canvas)
PAGES = (("", "Overview", True), ("nights", "Nights", False),
         ("performance", "Performance", True), ("drift", "Drift", True),
         ("models", "Models", True), ("predictions", "Predictions", False),
         ("ab", "A/B tests", True), ("alerts", "Alerts", False), ("costs", "Costs", True))
# Pages opened while a writer holds the warehouse (they share the busy path of `ui.start`;
# each view waits a few seconds, so not all seven).
BUSY_PAGES = tuple(p for p in PAGES if p[1] in ("Overview", "Nights", "Drift", "Models"))
WIDTH = 1400
# Streamlit has finished the run and drawn every element (skeletons gone, plots drawn).
SETTLED = """() => !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-testid="stSkeleton"]')
    && document.querySelectorAll('[data-testid="stPlotlyChart"]').length
       === document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot').length"""

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)",
                allow_module_level=True)


@contextmanager
def board_server(home: Path, log: Path, *, via_cli: bool = False) -> Iterator[str]:
    """The board on a free loopback port for this data home: the launcher's `streamlit run`
    command, or the `overnight board` command that wraps it; stopped by SIGTERM after."""
    port = free_port()
    command = ([str(Path(sys.executable).parent / "overnight"), "board", "--host", "127.0.0.1",
                "--port", str(port), "--headless"] if via_cli
               else board_command("127.0.0.1", port, headless=True))
    env = {**os.environ, "OVERNIGHT_HOME": str(home)}
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/_stcore/health", process)
        yield url
    finally:
        stop(process, timeout=20)
    with socket.socket() as probe:        # nothing left listening (the CLI forwards SIGTERM)
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the board outlived its command"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $BOARD_SCREENSHOTS if set (kept), else a tmp folder."""
    chosen = os.environ.get("BOARD_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("board-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def settle(page: Page) -> None:
    page.wait_for_function(SETTLED, timeout=60_000)
    page.wait_for_timeout(500)
    page.wait_for_function(SETTLED, timeout=60_000)


def visit(page: Page, url: str, title: str, shot: Path, *, whole: bool = True) -> str:
    """Open a page, let it finish, photograph it (all of it when `whole`); returns its text."""
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    page.goto(url)
    page.get_by_role("heading", name=title, level=1).wait_for(timeout=60_000)
    settle(page)
    if whole:
        height = page.evaluate(
            "document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        page.set_viewport_size({"width": WIDTH, "height": min(int(height) + 40, 9000)})
        settle(page)
    page.screenshot(path=str(shot))
    return str(page.inner_text("body"))


def assert_no_trace(page: Page, text: str) -> None:
    assert page.query_selector('[data-testid="stException"]') is None
    assert "Traceback" not in text


def test_every_page_in_chromium(board_home: Path, browser: Browser, shots: Path) -> None:
    with board_server(board_home, shots / "server.log") as url:
        page = browser.new_page()
        for path, title, shows_champion in PAGES:
            shot = shots / f"{path or 'overview'}.png"
            text = visit(page, f"{url}/{path}", title, shot)
            assert_no_trace(page, text)
            assert shot.stat().st_size > 20_000
            assert f"Last night recorded: {LAST_NIGHT}" in text, title   # the sidebar's line
            if shows_champion:
                assert CHAMPION in text, title
        page.close()


def test_the_board_keeps_answering_while_a_writer_holds_the_warehouse(
        board_home: Path, browser: Browser, shots: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(board_home, home)
    with board_server(home, shots / "server-busy.log", via_cli=True) as url:
        page = browser.new_page()
        with writer_holding(home / "warehouse.duckdb"):
            for path, title, _ in BUSY_PAGES:
                started = time.monotonic()
                text = visit(page, f"{url}/{path}", title,
                             shots / f"busy-{path or 'overview'}.png", whole=False)
                assert_no_trace(page, text)
                # nothing is cached yet on this server, so each page waited and said so
                assert BUSY_MESSAGE in text and CHAMPION not in text, title
                assert time.monotonic() - started < 30
        # the writer is gone: the page left open (Models) notices by itself, shows the data
        page.get_by_text(f"Report of {CHAMPION}").wait_for(timeout=30_000)
        assert_no_trace(page, page.inner_text("body"))
        page.close()


def test_the_explanation_page_renders_a_logged_prediction(board_home: Path, browser: Browser,
                                                          shots: Path) -> None:
    import duckdb

    with duckdb.connect(str(board_home / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute("SELECT prediction_id, predicted_class FROM predictions WHERE "
                          "role = 'served' ORDER BY prediction_id LIMIT 1").fetchone()
    assert row is not None
    prediction_id, predicted = row
    with board_server(board_home, shots / "server-explanation.log") as url:
        page = browser.new_page()
        text = visit(page, f"{url}/explanation?prediction={prediction_id}", "Explanation",
                     shots / "explanation.png")
        assert_no_trace(page, text)
        page.get_by_text("Mean absolute SHAP value").wait_for(timeout=60_000)
        text = str(page.inner_text("body"))
        assert predicted in text and CHAMPION in text and "SHAP values (shap:" in text
        assert "cannot be explained" not in text
        page.close()
