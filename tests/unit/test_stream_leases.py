"""A holder's lease renewal (rtms/leases.py), against the suite's real Redis: every lease is renewed in order in a
few script calls, whatever their number; one another worker holds is reported and left to that worker; one Redis
lost is taken again; one released while its renewal was under way stays released."""

import pytest

from rtms import leases
from rtms.redis_connection import redis_client


@pytest.fixture
def stream_ids():
    ids = [f"{index:032x}" for index in range(0xA000, 0xA000 + 7)]
    yield ids
    redis = redis_client()
    redis.delete(*[leases.lease_key(stream_id) for stream_id in ids], *redis.keys(leases.released_key("worker-*")))


def test_renewal_extends_ours_takes_back_a_lost_one_and_leaves_another_workers(stream_ids, settings, monkeypatch):
    settings.RTMS_LEASE_TTL = 3.0
    monkeypatch.setattr(leases, "RENEW_BATCH", 3)  # seven leases: three script calls, results still in order
    redis = redis_client()
    ours = {stream_id: leases.new_lease_value("worker-a") for stream_id in stream_ids}
    for stream_id, value in ours.items():
        assert leases.try_acquire(stream_id, value)
        redis.pexpire(leases.lease_key(stream_id), 500)  # about to run out
    lost, taken = stream_ids[2], stream_ids[5]
    redis.delete(leases.lease_key(lost))  # Redis restarted without it
    redis.set(leases.lease_key(taken), "worker-b:thief", px=3000)

    results = leases.renew_many(list(ours.items()), redis)

    assert results == [1, 1, 2, 1, 1, 0, 1]
    for stream_id, value in ours.items():
        if stream_id == taken:
            assert leases.holders([stream_id]) == {stream_id: "worker-b:thief"}
            continue
        assert leases.holders([stream_id]) == {stream_id: value}
        assert 2500 < redis.pttl(leases.lease_key(stream_id)) <= 3000  # a fresh ttl, not the 500 ms left


def test_renewing_nothing_asks_redis_nothing():
    assert leases.renew_many([], redis_client()) == []


@pytest.mark.parametrize("release_from", ["a thread", "the event loop"])
async def test_a_lease_released_while_its_renewal_was_under_way_stays_released(stream_ids, settings, release_from):
    """The renewal thread lists the held streams, then the loop releases one that ended, then the renewal's
    script runs: the lease is not taken back, so the stream's next holder takes it at once (before, it was
    re-taken "after Redis lost it" and kept everyone out for a ttl)."""
    settings.RTMS_LEASE_TTL = 3.0
    redis = redis_client()
    ended, still_held = stream_ids[:2]
    ours = {stream_id: leases.new_lease_value("worker-a") for stream_id in (ended, still_held)}
    for stream_id, value in ours.items():
        assert leases.try_acquire(stream_id, value)
    listed_by_the_renewal = list(ours.items())

    if release_from == "a thread":
        assert leases.release(ended, ours[ended])
    else:
        async_leases = leases.AsyncLeases(settings.REDIS_URL)
        assert await async_leases.release(ended, ours[ended])
        await async_leases.redis.aclose()
    results = leases.renew_many(listed_by_the_renewal, redis)

    assert results == [leases.RELEASED, leases.RENEWED]
    assert leases.holders([ended, still_held]) == {ended: None, still_held: ours[still_held]}
    assert leases.try_acquire(ended, leases.new_lease_value("worker-b"))  # the next holder, at once


def test_a_lease_of_a_new_holding_is_renewed_though_an_earlier_one_was_released(stream_ids, settings):
    """The released mark belongs to one holding (its value), not to the stream: this process holding the stream
    again later renews and re-takes its new lease as usual."""
    settings.RTMS_LEASE_TTL = 3.0
    stream_id = stream_ids[0]
    first = leases.new_lease_value("worker-a")
    assert leases.try_acquire(stream_id, first)
    assert leases.release(stream_id, first)
    again = leases.new_lease_value("worker-a")
    assert leases.try_acquire(stream_id, again)
    redis_client().delete(leases.lease_key(stream_id))  # Redis lost it

    assert leases.renew_many([(stream_id, again)], redis_client()) == [leases.RETAKEN]
    assert leases.holders([stream_id]) == {stream_id: again}
