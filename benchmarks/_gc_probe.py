"""What a full garbage collection costs in a process composed like `python -m bot serve --http` (no requests
served yet): `python -m benchmarks._gc_probe` prints one JSON object. Used by ack_latency.

Nothing is contacted: the ZEGO and Slack URLs point at a closed loopback port and no request is made.
"""

from __future__ import annotations

import asyncio
import gc
import json

from benchmarks._common import full_collection_ms
from bot.runtime import compose_app
from bot.settings import DEFAULT_PROFILE, SlackSettings, ZegoProfiles, ZegoSettings
from bot.slack.http import start_http
from bot.state import memory_state

UNUSED_URL = "http://127.0.0.1:9"  # the discard port; never called here
SAMPLES = 5  # full collections timed; the median is reported


async def probe() -> dict[str, float]:
    zego = ZegoSettings(app_id=1, server_secret="0" * 32, base_url=UNUSED_URL)
    profiles = ZegoProfiles(default=DEFAULT_PROFILE, by_name={DEFAULT_PROFILE: zego})
    slack = SlackSettings(bot_token="xoxb-probe", signing_secret="0" * 32, api_base_url=UNUSED_URL + "/api/")
    state = memory_state()
    async with compose_app(profiles, slack, state=state) as running:
        runner, _ = await start_http(running.app, "127.0.0.1", 0)
        try:
            result = {"tracked_objects": len(gc.get_objects()), "full_collection_ms": full_collection_ms(SAMPLES)}
            gc.freeze()
            result["full_collection_ms_after_freeze"] = full_collection_ms(SAMPLES)
            gc.unfreeze()
        finally:
            await runner.cleanup()
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(probe())))
