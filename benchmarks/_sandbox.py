"""A ZIM sandbox in a subprocess of its own, started and always stopped by a benchmark.

The sandbox runs in another process so its event loop never competes with the client being measured for
the same thread; it listens on loopback only, on a port the OS picks (`--port 0`), and is steered through
its control API (/_sandbox/...). Leaving the `async with` block stops it: SIGTERM, then SIGKILL if it has
not exited within a few seconds, whatever went wrong inside the block. `stop_on_signals()` turns SIGTERM and
SIGHUP into a cancellation so that block is left cleanly, and on Linux the sandbox is also asked to receive
SIGTERM if the benchmark dies without cleaning up (SIGKILL), so it never outlives its benchmark.

`ChildProcess` is that start/stop discipline for any `python -m bot ...` child (the app in _app_process.py
uses it too); `run_python` runs a short-lived child to its end within a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
CONTROL_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_BANNER_KEYS = ("ZEGO_API_BASE_URL", "ZEGO_APP_ID", "ZEGO_SERVER_SECRET")
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on loopback that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when its parent dies (Linux), or None elsewhere.

    The prctl function is looked up here, before fork, so the child only makes one libc call before exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))

    return set_parent_death_signal


def stop_on_signals() -> None:
    """Cancel the current task on SIGTERM or SIGHUP, so `async with` blocks (and the sandbox) end cleanly."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None:
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, task.cancel)


class SandboxError(RuntimeError):
    """The sandbox did not start, or its control API answered something unexpected."""


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ZEGO_/SLACK_ setting, plus `settings`.

    ZEGO_REGION is set to "" so that a developer's .env (which `python -m bot` loads without overriding
    the environment) cannot point a child at a real ZIM region.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ZEGO_", "SLACK_"))}
    env.update(ZEGO_REGION="", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    env.update(settings)
    return env


async def run_python(*args: str, env: dict[str, str], time_limit: float) -> tuple[int, bytes, bytes]:
    """`python <args>` in the repository, to its exit within `time_limit` s: (exit status, stdout, stderr).

    The child is killed if the time runs out (TimeoutError) or the wait is cancelled.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(time_limit):
            stdout, stderr = await process.communicate()
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout, stderr


class ChildProcess:
    """A `python -m bot ...` child for the length of an `async with` block.

    Subclasses start it in `_start()` with `_spawn()`. Leaving the block, or a failed start, calls `stop()`:
    SIGTERM, then SIGKILL after `stop_timeout_s`; stderr goes to a temporary file (see `stderr_tail()`).
    """

    stop_timeout_s = STOP_TIMEOUT_S

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _start(self) -> None:
        raise NotImplementedError

    async def _spawn(self, *bot_args: str, env: dict[str, str], stdout: int) -> asyncio.subprocess.Process:
        """`python -m bot <bot_args>` in the repository, asked to die with this process (Linux)."""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *bot_args,
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=self._stderr,
            preexec_fn=_die_with_parent(),
        )
        return self._process

    def stderr_tail(self, limit: int = 2000) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace")
        return text[-limit:].strip() or "(no stderr)"

    async def _end_process(self) -> None:
        """SIGTERM, wait up to `stop_timeout_s`, SIGKILL. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def stop(self) -> None:
        await self._end_process()
        self._close_stderr()


class SandboxProcess(ChildProcess):
    """`python -m bot sandbox --host 127.0.0.1 --port 0 --latency-ms MS` for the length of an `async with`."""

    def __init__(self, *, latency_ms: float = 0.0) -> None:
        super().__init__()
        self.latency_ms = latency_ms
        self.settings: dict[str, str] = {}
        self._drain: asyncio.Task[None] | None = None
        self._control: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        return self.settings["ZEGO_API_BASE_URL"]

    @property
    def app_id(self) -> int:
        return int(self.settings["ZEGO_APP_ID"])

    @property
    def secret(self) -> str:
        return self.settings["ZEGO_SERVER_SECRET"]

    async def _start(self) -> None:
        args = ("sandbox", "--host", LOOPBACK, "--port", "0", "--latency-ms", str(self.latency_ms))
        await self._spawn(*args, env=clean_env(), stdout=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await self._read_banner()
        except TimeoutError:
            raise SandboxError(f"the sandbox printed no settings within {START_TIMEOUT_S:.0f} s") from None
        self._drain = asyncio.create_task(self._drain_stdout())
        self._control = httpx.AsyncClient(base_url=self.base_url, timeout=CONTROL_TIMEOUT)
        health = await self._control.get("/healthz")
        if health.status_code != 200:
            raise SandboxError(f"the sandbox's /healthz answered HTTP {health.status_code}")

    async def _read_banner(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        while not all(key in self.settings for key in _BANNER_KEYS):
            line = await self._process.stdout.readline()
            if not line:
                raise SandboxError(f"the sandbox exited before it was ready: {self.stderr_tail()}")
            # The banner prints shell lines (`export KEY=value`); older sandboxes printed bare `KEY=value`.
            key, sep, value = line.decode().strip().removeprefix("export ").partition("=")
            if sep and key in _BANNER_KEYS:
                self.settings[key] = value
        host = httpx.URL(self.base_url).host
        if host != LOOPBACK:
            raise SandboxError(f"the sandbox is not on loopback: {self.base_url}")

    async def _drain_stdout(self) -> None:
        # Keep the pipe empty so a chatty sandbox can never block on a full pipe buffer.
        assert self._process is not None and self._process.stdout is not None
        while await self._process.stdout.read(65536):
            pass

    async def stop(self) -> None:
        """SIGTERM, wait a little, SIGKILL; close pipes and the control client. Safe to call twice."""
        if self._control is not None:
            await self._control.aclose()
            self._control = None
        await self._end_process()
        if self._drain is not None:
            self._drain.cancel()
            await asyncio.gather(self._drain, return_exceptions=True)
            self._drain = None
        self._close_stderr()

    # ----- control API ----------------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._control is None:
            raise SandboxError("the sandbox is not running")
        response = await self._control.request(method, path, json=body)
        if response.status_code != 200:
            raise SandboxError(f"{method} {path} answered HTTP {response.status_code}: {response.text[:200]}")
        payload = response.json()
        if not isinstance(payload, dict):
            raise SandboxError(f"{method} {path} answered something other than a JSON object")
        return payload

    async def set_latency(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        answer = await self._call("POST", "/_sandbox/latency", {"latency_ms": latency_ms, "jitter_ms": jitter_ms})
        if answer.get("latency_ms") != latency_ms:
            raise SandboxError(f"the sandbox kept latency {answer.get('latency_ms')} ms instead of {latency_ms} ms")
        self.latency_ms = latency_ms

    async def reset_stats(self) -> None:
        await self._call("POST", "/_sandbox/reset")

    async def stats(self) -> dict[str, Any]:
        return await self._call("GET", "/_sandbox/stats")

    async def stats_with_arrivals(self) -> dict[str, Any]:
        """`stats()` plus `arrivals`: the monotonic time of every request the QPS window counted."""
        return await self._call("GET", "/_sandbox/stats?arrivals=1")
