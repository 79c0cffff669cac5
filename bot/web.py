"""Serving an aiohttp application on a loopback or public port: the app, the ZIM sandbox and the Slack stand-in."""

from __future__ import annotations

import errno
import socket

from aiohttp import web

from bot.settings import StartupError

DEFAULT_SHUTDOWN_TIMEOUT = 60.0  # aiohttp's own default


class ListenError(StartupError):
    """The port could not be listened on: one sentence naming the setting (exit 2 at start-up)."""


def _listen_error(error: OSError, host: str, port: int, setting: str, host_setting: str) -> ListenError:
    if isinstance(error, socket.gaierror):  # an OSError too: check it first
        return ListenError(f"Cannot listen on {host!r} ({host_setting}): the host name does not resolve.")
    if error.errno == errno.EADDRINUSE:
        return ListenError(
            f"Port {port} on {host} is already in use ({setting}); stop the other process or pick another port."
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return ListenError(f"Cannot listen on {host}: it is not an address of this machine ({host_setting}).")
    if error.errno == errno.EACCES:
        return ListenError(f"Port {port} needs privileges this user does not have ({setting}); use a port above 1023.")
    return ListenError(f"Cannot listen on {host}:{port} ({setting}): {error.strerror or type(error).__name__}.")


async def start_site(
    web_app: web.Application,
    host: str,
    port: int,
    *,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    setting: str = "--port",
    host_setting: str = "--host",
) -> tuple[web.AppRunner, int]:
    """Start serving; return the runner (for cleanup) and the bound port (port 0 picks a free one).

    A port that can't be listened on raises ListenError, one sentence naming `setting` (or `host_setting`)."""
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        raise _listen_error(error, host, port, setting, host_setting) from None
    except BaseException:  # a port in use must not leave the runner behind
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])


def http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
