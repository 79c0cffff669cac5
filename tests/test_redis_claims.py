"""Claim sets without a TTL (bot/state/expiring.py), against a real redis-server: the rules of claim, renew and
release, expiry on Redis's clock, pruning, and the replay guard and dedupe built on them, shared by replicas."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.state.connection import connect
from bot.state.expiring import RedisClaims
from bot.state.once import RedisEventDeduper, RedisReplayGuard
from tests.redis_server import RedisServer

LONG_MS = 600_000  # nothing expires within a test
_names = itertools.count()


async def wait_until_expired(claims: RedisClaims, field: str) -> None:
    async with asyncio.timeout(5):
        while await claims.remaining_ms(field) is not None:  # noqa: ASYNC110  # until Redis's clock passes it
            await asyncio.sleep(0.01)


async def test_a_claim_is_exclusive_idempotent_for_its_token_and_released_only_by_it(clients):
    watcher = clients()
    one, two = RedisClaims(clients(), name="t:claims"), RedisClaims(clients(), name="t:claims")
    assert await one.claim("room", "token-a", LONG_MS)
    assert await one.claim("room", "token-a", LONG_MS)  # redis-py's retry of our own claim: still ours
    assert not await two.claim("room", "token-b", LONG_MS)
    assert not await two.release("room", "token-b")
    assert not await two.renew("room", "token-b", LONG_MS)
    assert await one.renew("room", "token-a", LONG_MS)
    remaining = await two.remaining_ms("room")
    assert remaining is not None and LONG_MS - 5_000 < remaining <= LONG_MS
    assert await one.release("room", "token-a")
    assert await two.remaining_ms("room") is None
    assert await two.claim("room", "token-b", LONG_MS)
    assert await watcher.pttl(one.hash_key) == -1
    assert await watcher.pttl(one.expiry_key) == -1


async def test_an_expired_claim_is_free_cannot_be_renewed_and_is_pruned(clients):
    watcher = clients()
    claims = RedisClaims(clients(), name="t:expiring")
    for n in range(100):
        assert await claims.claim(f"old-{n}", "a", 50)
    await wait_until_expired(claims, "old-99")
    assert not await claims.renew("old-0", "a", LONG_MS)  # ran out: lost, even though nobody took it
    assert await claims.claim("old-0", "b", LONG_MS)  # taken over
    assert not await claims.release("old-0", "a")  # the old holder can't free the new holder's claim
    assert await claims.remaining_ms("old-0") is not None
    await claims.claim("x", "c", LONG_MS)  # each claim prunes up to 64 expired fields
    left = await watcher.hlen(claims.hash_key)
    assert left == await watcher.zcard(claims.expiry_key)
    assert left <= 100 + 2 - 64 - 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(["claim", "renew", "release"]), st.sampled_from("abc"), st.sampled_from("xyz")),
        max_size=30,
    )
)
def test_claims_follow_the_model_of_one_holder_per_field(redis_server: RedisServer, operations) -> None:
    """Without expiry in play, a claim set is a map field → holder: claim takes a free field or keeps one's own,
    renew and release succeed only for the holder."""

    async def run() -> None:
        redis = connect(redis_server.url)
        claims = RedisClaims(redis, name=f"t:model:{next(_names)}")
        model: dict[str, str] = {}
        try:
            for operation, field, token in operations:
                holder = model.get(field)
                if operation == "claim":
                    expected = holder in (None, token)
                    assert await claims.claim(field, token, LONG_MS) is expected
                    if expected:
                        model[field] = token
                elif operation == "renew":
                    assert await claims.renew(field, token, LONG_MS) is (holder == token)
                else:
                    assert await claims.release(field, token) is (holder == token)
                    if holder == token:
                        del model[field]
                for name in "abc":
                    assert (await claims.remaining_ms(name) is not None) is (name in model)
        finally:
            await redis.aclose()

    asyncio.run(run())


async def test_the_replay_guard_is_shared_by_replicas(clients):
    replicas = [RedisReplayGuard(clients()) for _ in range(2)]
    verdicts = await asyncio.gather(*(guard.first_use("v0=abc", "1764312452") for guard in replicas * 5))
    assert verdicts.count(True) == 1
    assert await replicas[1].first_use("v0=other", "1764312452")


async def test_a_sighting_is_forgotten_after_its_ttl(clients):
    deduper = RedisEventDeduper(clients(), ttl=1)
    assert await deduper.first_sighting("Ev1")
    assert await deduper.seen("Ev1")
    await wait_until_expired(deduper.claims, "Ev1")
    assert not await deduper.seen("Ev1")
    assert await deduper.first_sighting("Ev1")
