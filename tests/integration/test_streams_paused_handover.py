"""A paused stream handed over to another worker (SIGTERM, as a deploy does) stays paused: Zoom keeps the pause
across the new holder's connection and says so after its ready (docs/STREAMS.md "Paused streams"), so the new
holder records it paused, never active, and the host can still resume it."""

import pytest

from tests.integration.streams_stack import streams_stack, wait_for_row
from tests.integration.test_streams_failover import worker_holding


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("pausedhandover"), "pausedhandover", django_db_blocker,
                       workers=("worker-a", "worker-b")) as stack:
        yield stack


def test_a_paused_stream_handed_over_is_recorded_paused_by_its_new_holder(stack, django_db_blocker):
    from rtms.models import StreamSession, StreamTransition

    meeting, held = stack.hold_stream(django_db_blocker, "Paused deploy")
    stream_id = held.rtms_stream_id
    stack.sim.post(f"/_sim/streams/{stream_id}/pause").raise_for_status()
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="paused").exists(), "the stream paused")
    with django_db_blocker.unblock():
        paused = StreamTransition.objects.filter(stream__rtms_stream_id=stream_id).latest("pk").pk

    worker_holding(stack, held.owner_worker).stop()  # SIGTERM
    taken = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, connect_claims=0).exclude(owner_worker=held.owner_worker).first(),
        "another worker to hold the stream, connected (its claim counted afresh)", timeout=20)
    with django_db_blocker.unblock():
        since_pause = list(StreamTransition.objects.filter(stream__rtms_stream_id=stream_id, pk__gt=paused)
                           .order_by("pk").values_list("state", "reason"))
    assert taken.state == "paused" and "active" not in [state for state, _ in since_pause], \
        f"the handover read as the end of the pause: {since_pause}"
    assert stack.sim_stream(stream_id)["state"] == "paused"

    stack.sim.post(f"/_sim/streams/{stream_id}/resume").raise_for_status()
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="active").exists(), "the stream resumed")
    stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")
