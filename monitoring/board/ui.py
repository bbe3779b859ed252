"""The Streamlit glue every page shares: sidebar filters, guarded loading, empty states.

Why one place: each page must behave the same way when the warehouse is busy (say so, retry
shortly, never show a traceback), when the data home is new (show the command to run), and
with the sidebar's filters, so a page is only the layout of its own data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from monitoring.board import data
from monitoring.board.charts import PLOTLY_CONFIG
from warehouse import OvernightError, get_settings

T = TypeVar("T")
CACHE_SECONDS = 15          # how stale a page may be; also spares the nightly writer our opens
RETRY_SECONDS = 5           # how often a busy page checks whether the writer is done
FILTERS_KEY = "board.filters"
STATE_KEY = "board.state"   # the sidebar's reading of this run, handed to the page
# Markdown icons (Material Symbols ship with Streamlit; emoji fonts are often missing).
STATUS_ICONS = {"ok": ":green[:material/check_circle:]", "failed": ":red[:material/cancel:]",
                "skipped": ":gray[:material/skip_next:]", "running": ":orange[:material/pending:]"}
SEVERITY_ICONS = {"critical": ":red[:material/error:]", "warning": ":orange[:material/warning:]",
                  "info": ":blue[:material/info:]"}


@dataclass(frozen=True)
class Board:
    """What a page starts from: the warehouse's state and the sidebar's filters."""

    state: data.BoardState
    filters: data.Filters

    @property
    def datasets(self) -> tuple[str, ...]:
        chosen = self.filters.datasets
        return tuple(d for d in self.state.datasets if chosen is None or d in chosen)


def warehouse_path() -> Path:
    return get_settings().warehouse_path


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False, max_entries=200)
def _cached(name: str, path: str, *args: Any) -> Any:
    """Query results per (function, warehouse file, arguments) for a few seconds."""
    if name == "board_state":
        return data.board_state(path)
    return data.read(getattr(data, name), *args, path=path)


def load(query: Callable[..., T], *args: Any) -> T:
    """`query(con, *args)` on a short read-only connection, or a message and a stopped page.

    Busy: a warning and a retry every few seconds. No warehouse: the first-run message.
    Anything else the warehouse refuses: an error message naming it, not a traceback.
    """
    try:
        return _cached(query.__name__, str(warehouse_path()), *args)
    except data.WarehouseBusy as busy:
        show_busy(busy)
    except data.NoWarehouse:
        show_first_run()
    except (OvernightError, duckdb.Error) as error:
        st.error(f"The board could not read the warehouse: {error}")
    st.stop()
    raise AssertionError("unreachable: st.stop() ends the run")  # pragma: no cover


def show_busy(busy: data.WarehouseBusy) -> None:
    st.warning(data.BUSY_MESSAGE, icon=":material/hourglass_top:")
    st.caption(f"{busy.path} is held by {busy.holder}. The board waited {busy.waited:.0f} s; "
               f"it checks again every {RETRY_SECONDS} s and reloads when the writer is done.")
    _retry_when_free()


@st.fragment(run_every=RETRY_SECONDS)
def _retry_when_free() -> None:
    if data.is_free(warehouse_path()):
        st.rerun(scope="app")


def show_first_run() -> None:
    st.info(data.first_run_message(get_settings().home), icon=":material/bedtime:")
    st.code(data.FIRST_RUN_COMMAND, language="bash")


def start(title: str, about: str) -> Board:
    """A page's title, then its board; a new data home stops here with the first-run message.

    The sidebar has just read the board's state in this run (`STATE_KEY`); the page reuses
    it, so a busy warehouse costs one wait per page view, not two.
    """
    st.title(title)
    st.caption(about)
    found = st.session_state.pop(STATE_KEY, None)
    if isinstance(found, data.WarehouseBusy):
        show_busy(found)
        st.stop()
    state = found if isinstance(found, data.BoardState) else load(data.board_state)
    if not state.exists or state.empty:
        show_first_run()
        st.stop()
    filters = st.session_state.get(FILTERS_KEY)
    return Board(state, filters if isinstance(filters, data.Filters) else data.Filters())


def sidebar() -> None:
    """Dataset and date filters (kept in the session for every page), refresh, freshness."""
    bar = st.sidebar
    bar.caption(f"Data home: `{get_settings().home}`")
    try:
        state = _cached("board_state", str(warehouse_path()))
    except data.WarehouseBusy as busy:
        st.session_state[STATE_KEY] = busy
        bar.warning("Warehouse busy; filters will be back shortly.")
        return
    except (OvernightError, duckdb.Error):      # the page says what is wrong
        return
    st.session_state[STATE_KEY] = state
    if not state.exists or state.empty:
        bar.info(f"No data yet: run `{data.FIRST_RUN_COMMAND}`.")
        return
    chosen = bar.multiselect("Datasets", state.datasets, default=list(state.datasets),
                             key="board.datasets", help="Empty means all datasets.")
    start, end = date_range(bar, state)
    st.session_state[FILTERS_KEY] = data.Filters(
        tuple(chosen) if chosen and len(chosen) < len(state.datasets) else None, start, end)
    if bar.button("Refresh now", help=f"Pages keep their data for {CACHE_SECONDS} s."):
        _cached.clear()
    bar.caption(data.freshness(state))


def date_range(bar: Any, state: data.BoardState) -> tuple[date | None, date | None]:
    if state.first_day is None or state.last_day is None:
        return None, None
    picked = bar.date_input("Dates", value=(state.first_day, state.last_day),
                            min_value=state.first_day, max_value=state.last_day,
                            key="board.dates", help="Nights, prediction days, alert days.")
    chosen = list(picked) if isinstance(picked, list | tuple) else [picked]
    return (chosen[0] if chosen else None), (chosen[1] if len(chosen) > 1 else None)


def choose_dataset(board: Board, key: str) -> str:
    """One dataset among the filtered ones, for pages that show one at a time."""
    if not board.datasets:
        st.info("No dataset selected in the sidebar.")
        st.stop()
    return str(st.selectbox("Dataset", board.datasets, key=key))


def chart(figure: go.Figure, key: str) -> None:
    st.plotly_chart(figure, config=PLOTLY_CONFIG, key=key)


def table(frame: pd.DataFrame, **column_config: Any) -> None:
    st.dataframe(frame, hide_index=True, column_config=column_config or None)


@st.cache_data(ttl=300, max_entries=8, show_spinner=False)
def _report_text(path: str, modified: float) -> str:
    return data.read_report(Path(path))


def html_report(path: Path, *, title: str, height: int, key: str) -> None:
    """A report file shown inside the page, with a download button (or why it cannot be)."""
    if not path.is_file():
        st.warning(f"{title}: the file {path} is not there any more.")
        return
    text = _report_text(str(path), path.stat().st_mtime)
    st.download_button(f"Download the {title}", text, file_name=path.name,
                       mime="text/html", key=f"{key}.download", on_click="ignore",
                       icon=":material/download:")
    st.iframe(text, height=height)
