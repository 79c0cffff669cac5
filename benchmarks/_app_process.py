"""The Slack app as production runs it, in a process of its own: `python -m bot serve --http` on loopback.

Used where sharing an event loop with the Slack stand-in would blur what is measured (ack latency): the
stand-in stays in the benchmark's process and the app gets its own interpreter, as it would behind a load
balancer. Settings come from the environment the way `serve` reads them (SLACK_*, ZEGO_*, SNAPSHOT_TTL_SECONDS);
SLACK_API_BASE_URL points the app's Web API calls at the stand-in. The process is always stopped when the
`async with` block is left (SIGTERM, then SIGKILL), and is asked to die with its parent on Linux.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks._sandbox import LOOPBACK, ChildProcess, SandboxProcess, clean_env, free_port
from bot.slack.http import EVENTS_PATH

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class AppProcess(ChildProcess):
    """`python -m bot serve --http --host 127.0.0.1 --port <free>` against `sandbox` and a Slack stand-in."""

    stop_timeout_s = STOP_TIMEOUT_S

    def __init__(
        self,
        *,
        sandbox: SandboxProcess,
        slack_api_base_url: str,
        bot_token: str,
        signing_secret: str,
        snapshot_ttl_s: float = 300.0,
        qps: float = 20.0,
    ) -> None:
        super().__init__()
        self.port = free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.events_url = self.base_url + EVENTS_PATH
        self._env = clean_env(
            ZEGO_APP_ID=str(sandbox.app_id),
            ZEGO_SERVER_SECRET=sandbox.secret,
            ZEGO_API_BASE_URL=sandbox.base_url,
            ZEGO_QPS=f"{qps:g}",
            SLACK_BOT_TOKEN=bot_token,
            SLACK_SIGNING_SECRET=signing_secret,
            SLACK_API_BASE_URL=slack_api_base_url,
            SNAPSHOT_TTL_SECONDS=f"{snapshot_ttl_s:g}",
            SHUTDOWN_GRACE_SECONDS="1",
            LOG_LEVEL="ERROR",
        )
        self._env.pop("REDIS_URL", None)

    async def _start(self) -> None:
        args = ("serve", "--http", "--host", LOOPBACK, "--port", str(self.port))
        await self._spawn(*args, env=self._env, stdout=asyncio.subprocess.DEVNULL)
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise RuntimeError(f"`python -m bot serve` exited {self._process.returncode}: {self.stderr_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(self.base_url + "/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"`python -m bot serve` was not ready in {START_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.1)

    async def metrics(self) -> dict[str, float]:
        """The app's /metrics as {"name{label=value,...}": value}."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            text = (await client.get(self.base_url + "/metrics")).text
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{key}={value}" for key, value in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples
