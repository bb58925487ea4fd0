"""Fencing: a worker whose stream lease was taken by another worker closes that stream's sockets at once and
leaves the lease to its new holder, so two workers never hold one stream (rtms/leases.py). Against a real worker
holding a real stream from the simulator; the other worker's take is played in Redis, as its SET would land."""

import time

import pytest

from rtms import leases
from rtms.redis_connection import redis_client
from tests.integration.streams_stack import streams_stack
from tests.processes import wait_for


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("fencing"), "fencing", django_db_blocker) as stack:
        yield stack


def live_connections(stack, stream_id):
    return [c for c in stack.sim_stream(stream_id)["connections"] if c["closed_at"] is None]


def test_a_holder_whose_lease_is_taken_closes_its_sockets_at_once(stack, django_db_blocker, settings):
    settings.REDIS_NAMESPACE = stack.namespace  # the stack's leases
    meeting, held = stack.hold_stream(django_db_blocker, "Fenced")
    stream_id = held.rtms_stream_id
    assert live_connections(stack, stream_id)
    holder = redis_client().get(leases.lease_key(stream_id)).decode()
    assert holder.startswith(held.owner_worker)

    thief = "worker-b@elsewhere:0123456789ab"
    redis_client().set(leases.lease_key(stream_id), thief, px=60_000)
    taken_at = time.monotonic()
    try:
        # The holder renews every third of the lease (1.5 s here): its next renewal finds the thief's value.
        wait_for(lambda: not live_connections(stack, stream_id), 3, "the holder to close every socket of the stream",
                 interval=0.02)
        fenced_after = time.monotonic() - taken_at
        print(f"\nfencing: sockets closed {fenced_after:.2f} s after the lease was taken")
        assert fenced_after < 1.5  # within the lease's TTL: never two holders past it
        log = stack.workers[0].log_text()
        assert "lease lost, sockets closed" in log and "lease taken by another worker" in log

        time.sleep(1.0)  # a fenced holder neither reconnects nor gives the lease back
        assert not live_connections(stack, stream_id)
        assert redis_client().get(leases.lease_key(stream_id)).decode() == thief
        assert stack.sim_stream(stream_id)["state"] == "interrupted"  # Zoom waits for the lease's new holder
    finally:
        redis_client().delete(leases.lease_key(stream_id))
        stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")
