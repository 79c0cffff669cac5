"""Socket Mode: the app opens a WebSocket to Slack (apps.connections.open with the xapp- token) and is sent
commands, clicks and events over it. The local stack connects with this plain handler; `serve` uses
`bot.slack.link` (TimedSocketModeHandler, with the connection's state for /readyz and ack timing)."""

from __future__ import annotations

from dataclasses import dataclass

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp


@dataclass
class SocketModeConnection:
    handler: AsyncSocketModeHandler

    async def is_connected(self) -> bool:
        return bool(await self.handler.client.is_connected())

    async def close(self) -> None:
        await self.handler.close_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated


async def connect_socket_mode(app: AsyncApp, app_token: str, *, ping_interval: float = 10.0) -> SocketModeConnection:
    """Connect (slack_sdk reconnects by itself on `disconnect` frames and stale sessions) and return the handle."""
    handler = AsyncSocketModeHandler(app, app_token, ping_interval=ping_interval)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    return SocketModeConnection(handler)
