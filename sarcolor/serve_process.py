"""``sarcolor serve`` in a subprocess on a free local port: for the browser tests and the README screenshot."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from typing import IO


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for a server started right after."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen, seconds: float = 300) -> bool:
    """Poll ``url`` until it answers (True), or the server process exits or time runs out (False)."""
    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return True
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                return False
            time.sleep(0.5)


def start_serve(serve_args: list[str], env: dict | None = None, output: IO | None = None) -> tuple[str, subprocess.Popen]:
    """Start ``python -m sarcolor serve --port PORT *serve_args``; (its URL, the process) once it answers.

    Raises RuntimeError (the process killed) when it exits or does not answer within 5 minutes.
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sarcolor", "serve", "--port", str(port), *serve_args],
        stdout=output, stderr=subprocess.STDOUT if output else None, env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    if not wait_until_serving(url, process):
        process.kill()
        process.wait()
        raise RuntimeError(f"sarcolor serve did not start at {url}")
    return url, process
