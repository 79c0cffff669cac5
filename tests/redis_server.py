"""A real `redis-server` on a free loopback port for tests, which can be stopped and started again on the same
port (to play an outage and a recovery). No persistence: `--save "" --appendonly no` in a temp dir.

If redis-server is not installed the tests FAIL (not skip) with a message saying how to get it: a skipped
suite would hide that the multi-replica behaviour was never checked. `make unit` installs it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

_NO_RETRY = Retry(NoBackoff(), 0)  # polling for start-up: a refused connection should answer at once
INSTALL_HINT = "run `make redis-server` or `apt-get install redis-server`"


def redis_server_executable() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.fail(f"redis-server is not installed; the shared-state tests need a real one ({INSTALL_HINT}).")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """`with RedisServer() as server:` → `server.url`; `stop()` and `start()` keep the same port."""

    def __init__(self, *, port: int | None = None, args: Sequence[str] = ()) -> None:
        self._executable = redis_server_executable()
        self._args = list(args)  # extra server options, e.g. ["--requirepass", "pw"]
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="roomusers-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def _password(self) -> str | None:
        args = self._args
        return next((args[i + 1] for i in range(len(args) - 1) if args[i] == "--requirepass"), None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = 5.0) -> None:
        if self.running:
            return
        log = self._dir / "redis.log"
        command = [
            self._executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--logfile", str(log),
            *self._args,
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # noqa: S603  # our own argv, no shell
        deadline = time.monotonic() + timeout
        while not self._answers_ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                output = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{output}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut the server down (connections drop at once) and wait until its port is closed."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def flush(self) -> None:
        with redis.Redis(port=self.port, socket_timeout=1, password=self._password) as client:
            client.flushall()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _answers_ping(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2, retry=_NO_RETRY) as client:
                return bool(client.ping())
        except redis.exceptions.AuthenticationError:
            return True  # it answers; it just wants a password (a server started with --requirepass)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError):
            return False

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
