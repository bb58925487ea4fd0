"""Three worker nodes hold 150 streams with media in S3-API storage (moto's server on 127.0.0.1): one node is
killed with SIGKILL (a machine failing), it comes back, another is drained with SIGTERM (a deploy). Every stream is
held again within 5 s by another node and never by two at once, no process holds more than its capacity, each
stream's stored audio is complete across the segments the nodes wrote, and streams ended by us are never claimed
again."""

import os
import signal
import time

import pytest

from tests.fleet import Fleet, audio_defects, audio_gap, load_average, percentile
from tests.processes import wait_for
from tests.s3_server import CREDENTIALS, s3_bucket, s3_server  # noqa: F401 - fixtures

# The issue's 300 streams run in bench/fleet.py; here half of that: this 2-core machine runs four engineers' test
# suites at once (load average 10-20), where 300 streams moving at once took 5-7 s to be claimed instead of ~2 s.
STREAMS = 150
CAPACITY = 75  # two nodes hold all the streams while the third is down
TAKEOVER_BOUND_S = 5.0  # from the signal to the stream's lease won by a process of another node
# Above this load average (four runnable processes per core: other engineers' suites on the same 2 cores) every
# process here waits for a core, and the bounds double; the figures printed say which applied.
OVERLOADED = 4 * (os.cpu_count() or 1)


def bound(seconds, load):
    return seconds * (2 if load > OVERLOADED else 1)


# In a pytest run of its own (bin/test runs the `alone` tests after the rest): the fleet's rows must not live in a
# database that a run's session-wide beat reconciles (it sees none of the fleet's leases, which are in another Redis
# namespace, and would hand the fleet's streams to the run's worker).
pytestmark = pytest.mark.alone


@pytest.fixture
def fleet(stack_env, tmp_path, s3_server, s3_bucket, django_db_blocker):  # noqa: F811
    env = dict(stack_env, **CREDENTIALS, MEDIA_STORAGE="s3", MEDIA_S3_BUCKET=s3_bucket,
               MEDIA_S3_ENDPOINT_URL=s3_server, LOG_LEVEL="INFO")
    fleet = Fleet(env, tmp_path, STREAMS, CAPACITY)
    with django_db_blocker.unblock():
        try:
            fleet.start()
            yield fleet
        finally:
            fleet.stop()
            fleet.forget_streams()


@pytest.mark.timeout(240)
def test_a_fleet_survives_a_failed_node_and_a_drained_one(fleet, django_db_blocker, settings, s3_server,  # noqa: F811
                                                          s3_bucket):  # noqa: F811
    from rtms.models import StreamSession
    from rtms.storage import storage

    fleet.wait_all_held(60)
    before = fleet.per_node()
    print(f"\nfleet: {STREAMS} streams held, per node {dict(before)}; load average {load_average()}")
    assert max(fleet.per_process(fleet.holders()).values()) <= CAPACITY
    time.sleep(6)  # a segment uploaded by each first holder

    killed, kill_peak = fleet.takeover("node-a", signal.SIGKILL)
    kill_load = os.getloadavg()[0]
    killed_workers = fleet.victim_workers
    after_kill = fleet.per_node()
    fleet.start_node("node-a")  # the machine back: its spool (the killed segments) is uploaded at start
    time.sleep(6)
    drained, drain_peak = fleet.takeover("node-b", signal.SIGTERM)
    drain_load = os.getloadavg()[0]
    drained_workers = fleet.victim_workers
    after_drain = fleet.per_node()
    for what, takeover, load in (("SIGKILL", killed, kill_load), ("SIGTERM", drained, drain_load)):
        seconds = [s for s in takeover.values() if s is not None]
        print(f"fleet: {what}: {len(seconds)}/{len(takeover)} streams held again, p50 "
              f"{percentile(seconds, 0.5):.2f} s, p99 {percentile(seconds, 0.99):.2f} s, max {max(seconds):.2f} s "
              f"(bound {bound(TAKEOVER_BOUND_S, load):.0f} s at load average {load:.1f})")
    print(f"fleet: per node after SIGKILL {dict(after_kill)}, after SIGTERM {dict(after_drain)}; "
          f"most held by one process {max(kill_peak, drain_peak)} (capacity {CAPACITY}); load average {load_average()}")

    assert killed and drained
    assert all(s is not None and s <= bound(TAKEOVER_BOUND_S, kill_load) for s in killed.values()), killed
    assert all(s is not None and s <= bound(TAKEOVER_BOUND_S, drain_load) for s in drained.values()), drained
    assert max(kill_peak, drain_peak) <= CAPACITY
    assert after_drain["node-b"] == 0 and after_drain["nobody"] == 0
    assert "duplicate signal request" not in fleet.log_text()  # never two holders on the RTMS server's side
    assert "streams handed over" in fleet.nodes["node-b"].log_text()
    time.sleep(6)

    # We end every stream (the reconciler repeats the stop to each holder); none may be claimed again.
    with django_db_blocker.unblock():
        generations = dict(StreamSession.objects.values_list("rtms_stream_id", "lease_generation"))
        StreamSession.objects.update(desired_state="stopped")
        # 150 stops through the reconciler and three nodes' hosts: minutes on a loaded 2-core machine, not seconds.
        wait_for(lambda: StreamSession.objects.filter(state="stopped").count() == STREAMS,
                 2 * bound(60, os.getloadavg()[0]), "every stream to be stopped")
        wait_for(lambda: not any(fleet.holders().values()), 15, "every lease released")
        time.sleep(2)  # several reconciler ticks
        assert dict(StreamSession.objects.values_list("rtms_stream_id", "lease_generation")) == generations

        def all_uploaded():
            segments = fleet.audio_segments()
            return all(seg and all(s.stored for s in seg) for seg in segments.values()) and segments
        try:
            segments = wait_for(all_uploaded, 30, "every audio segment uploaded")
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}\n{fleet.not_stored()}") from None
        streams = {s.rtms_stream_id: s for s in StreamSession.objects.all()}

    settings.MEDIA_STORAGE, settings.MEDIA_S3_BUCKET, settings.MEDIA_S3_ENDPOINT_URL = "s3", s3_bucket, s3_server
    nodes_per_stream = []
    for stream_id, stream_segments in segments.items():
        holes, overlaps = audio_defects(stream_segments)
        assert (holes, overlaps) == (0, 0), (stream_id, [(s.first_timestamp, s.last_timestamp, s.frames)
                                                         for s in stream_segments])
        nodes_per_stream.append(len({s.node for s in stream_segments}))
        assert sum(s.bytes for s in stream_segments) == streams[stream_id].audio_bytes
        assert {s.path for s in stream_segments} <= set(storage().keys(stream_id))  # readable from any node
    print(f"fleet audio: {sum(len(s) for s in segments.values())} segments, up to {max(nodes_per_stream)} holders "
          f"per stream, no frame missing inside a segment, none stored twice")
    for what, moved, workers in (("SIGKILL", killed, killed_workers), ("SIGTERM", drained, drained_workers)):
        gaps = [audio_gap(segments[stream_id], workers) for stream_id in moved]
        assert None not in gaps  # the old holder's segments (the killed one's from its spool) and the new one's
        # In the load server's clock, which falls behind and catches up when the machine is overloaded: shown, not
        # bounded (the takeover itself is, above).
        print(f"fleet audio: {what}: audio not stored at the takeover p50 {percentile(gaps, 0.5):.2f} s, p99 "
              f"{percentile(gaps, 0.99):.2f} s (sent while nobody held the stream: this load server does not "
              f"replay); load average {load_average()}")
