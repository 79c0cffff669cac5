"""Serving an aiohttp application on a loopback or public port: the app, the ZIM sandbox and the Slack stand-in."""

from __future__ import annotations

from aiohttp import web

DEFAULT_SHUTDOWN_TIMEOUT = 60.0  # aiohttp's own default


async def start_site(
    web_app: web.Application, host: str, port: int, *, shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
) -> tuple[web.AppRunner, int]:
    """Start serving; return the runner (for cleanup) and the bound port (port 0 picks a free one)."""
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:  # a port in use must not leave the runner behind
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])


def http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
