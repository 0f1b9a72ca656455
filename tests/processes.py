"""Stand-in providers as their own processes, started as a developer would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port


def _wait_ready(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll /healthz until the process answers; runs before any event loop."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"stand-in exited: {log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise AssertionError(f"stand-in did not start: {log_path.read_text()}")


@contextmanager
def run_server_command(
    command: str, *args: str, log_path: Path, port: int | None = None
) -> Iterator[str]:
    """`python -m server COMMAND --port N ARGS` on a free port; yields its base URL.

    The child gets none of the QRLOGIN_ (or STANDIN_) variables of the test run.
    """
    port = port or free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QRLOGIN_", "STANDIN_IDENTITY_"))
    }
    argv = [sys.executable, "-m", "server", command, "--port", str(port), *args]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log_path)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
