"""A throwaway `redis-server` on a free loopback port for the optional Redis measurements.

No persistence (`--save "" --appendonly no`, in a temporary directory). `RedisServer.available()` is False
when there is no redis-server binary or no bot.state package; the benchmarks then skip their Redis rows.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from benchmarks._sandbox import free_port

START_TIMEOUT_S = 10.0


class RedisServer:
    """`with RedisServer() as server:` → `server.url`; the server and its directory are gone afterwards."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="roomusers-bench-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def executable() -> str | None:
        return shutil.which("redis-server")

    @classmethod
    def available(cls) -> bool:
        try:
            import bot.state  # noqa: F401  (another team's package; it may be absent)
        except ImportError:
            return False
        return cls.executable() is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def flush(self) -> None:
        """FLUSHALL: an empty server for the next run."""
        with redis.Redis(port=self.port, socket_timeout=1) as client:
            client.flushall()

    def __enter__(self) -> RedisServer:
        executable = self.executable()
        if executable is None:
            raise RuntimeError("redis-server is not installed")
        command = [
            executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--logfile", str(self._dir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2) as probe:
                    if probe.ping():
                        break
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)
