"""Starting the board: the `streamlit run` command line, and running it as a child process.

Why a function for the command: the CLI (`overnight board`), the tests and anyone deploying the
board behind a proxy start it the same way, with usage statistics off (the machines it runs
on often have no network) and the interpreter of this environment.

Why `board_environment`: on a machine where Streamlit never ran, a non-headless `streamlit run`
first asks for an e-mail address on standard input and serves nothing until it gets one, so
under a service manager the board would hang, and a new user would be greeted by a marketing
question. `server.showEmailPrompt` off (by its environment variable, which Streamlit reads like
the flag) removes the prompt whether or not a browser is opened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501


def app_path() -> Path:
    """The Streamlit entry script of the board."""
    return Path(__file__).with_name("app.py")


def board_command(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                  headless: bool = True) -> list[str]:
    """`streamlit run` of the board on host:port, by this interpreter, without telemetry.

    Headless means Streamlit does not try to open a browser (servers, tests); it still serves.
    """
    return [sys.executable, "-m", "streamlit", "run", str(app_path()),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false"]


NO_PROMPT = {"STREAMLIT_SERVER_SHOW_EMAIL_PROMPT": "false"}


def board_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The board's environment: `env` (default: this process's) without Streamlit's
    first-run e-mail prompt, whatever the user's own settings say."""
    return {**(dict(os.environ) if env is None else env), **NO_PROMPT}


def board_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    return f"http://{host}:{port}"


def run_board(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, headless: bool = True,
              env: dict[str, str] | None = None) -> int:
    """Run the board until it stops; returns Streamlit's exit code.

    The environment is passed through (OVERNIGHT_HOME decides what the board reads). Ctrl-C
    reaches Streamlit too (same process group); a SIGTERM sent to this process is forwarded,
    so stopping `overnight board` never leaves a server behind.
    """
    process = subprocess.Popen(board_command(host, port, headless),
                               env=board_environment(env))

    def forward(signum: int, _frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:       # Streamlit got the same Ctrl-C: let it finish
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)
