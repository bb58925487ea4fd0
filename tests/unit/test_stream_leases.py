"""A holder's lease renewal (rtms/leases.py), against the suite's real Redis: every lease is renewed in order in a
few script calls, whatever their number; one another worker holds is reported and left to that worker; one Redis
lost is taken again."""

import pytest

from rtms import leases
from rtms.redis_connection import redis_client


@pytest.fixture
def stream_ids():
    ids = [f"{index:032x}" for index in range(0xA000, 0xA000 + 7)]
    yield ids
    redis_client().delete(*[leases.lease_key(stream_id) for stream_id in ids])


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
