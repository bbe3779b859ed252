"""Real servers in tests and benchmarks: a free loopback port, and waiting until one answers."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def wait_for_every_worker(url: str, version: str, workers: int = 2) -> None:
    """Until every worker holds `version` (a worker still booting would meet the forgery with
    nothing to keep). Each worker reports its own series (label `pid`) on /metrics."""
    pattern = re.compile(r'overnight_model_info\{[^}]*model_version="' + re.escape(version)
                         + r'"[^}]*\}')
    pids: set[str] = set()
    deadline = time.monotonic() + 60
    while len(pids) < workers and time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        pids |= {m for line in pattern.findall(text) for m in re.findall(r'pid="(\d+)"', line)}
        time.sleep(0.1)
    assert len(pids) >= workers, f"workers serving {version}: {pids}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Poll `url` until it answers 200; fail early if the server process has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def server_log(directory: Path) -> IO[str]:
    """A file for a server's output: a pipe nobody reads fills up and blocks its workers."""
    return (Path(directory) / "server.log").open("w")


def log_text(handle: IO[str]) -> str:
    """What a server wrote to its `server_log`, for a failure message."""
    handle.flush()
    return Path(handle.name).read_text(errors="replace")[-5000:]


OVERNIGHT = str(Path(sys.executable).parent / "overnight")


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM (a graceful stop, as a service manager does), then SIGKILL after `timeout`."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def overnight_serve(options: list[str], env: dict[str, str], log_dir: Path,
                    ready: Callable[[str], None] | None = None, up_path: str = "/ready",
                    ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`overnight serve OPTIONS` on a free loopback port, until `up_path` answers 200 (and
    `ready(url)` passes); yields the process and its base URL, and stops it after (SIGTERM,
    then SIGKILL). Its output goes to a file: a pipe nobody reads fills up and blocks the
    workers."""
    output = server_log(log_dir)
    port = free_port()
    proc = subprocess.Popen([OVERNIGHT, "serve", "--port", str(port), *options], env=env,
                            stdout=output, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_up(f"{url}{up_path}", proc)
            if ready is not None:
                ready(url)
        except AssertionError as error:
            raise AssertionError(f"{error}: {log_text(output)}") from None
        yield proc, url
    finally:
        stop(proc)
        output.close()
