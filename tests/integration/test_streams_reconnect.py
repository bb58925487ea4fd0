"""A held stream survives Zoom-side trouble: a dropped socket or keep-alives that stop → the worker reconnects
inside Zoom's window and data flows again (simulator fault injection, timings scaled ×0.1)."""

import pytest

from tests.integration.streams_stack import (
    overlapping_live_connections,
    streams_stack,
    wait_for_row,
)


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("reconnect"), "reconnect", django_db_blocker) as stack:
        yield stack


def assert_data_flows_after(stack, django_db_blocker, meeting, stream_id, line):
    from rtms.models import StreamSession, TranscriptSegment

    stream = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, reconnects__gte=1, state="active").first(), "the stream to reconnect")
    stack.speak(meeting, line)
    wait_for_row(django_db_blocker, lambda: TranscriptSegment.objects.filter(
        stream__rtms_stream_id=stream_id, text=line).exists(), "a line spoken after the reconnect")
    with django_db_blocker.unblock():
        states = list(stream.transitions.values_list("state", flat=True))
    assert "interrupted" in states and states[-1] == "active"
    assert overlapping_live_connections(stack.signaling_connections(stream_id)) == []


@pytest.mark.parametrize("socket", ["signaling", "audio", "all"])
def test_dropped_socket_reconnects_and_data_resumes(stack, django_db_blocker, held_stream, socket):
    meeting, stream_id = held_stream
    stack.fault(kind="drop_socket", stream_id=stream_id, socket=socket)
    assert_data_flows_after(stack, django_db_blocker, meeting, stream_id, f"Back after the {socket} drop")


def test_keepalive_stall_is_noticed_and_reconnected(stack, django_db_blocker, held_stream):
    from rtms.models import StreamSession

    meeting, stream_id = held_stream
    stack.fault(kind="stall_keepalive", stream_id=stream_id, socket="signaling")
    # Nothing heard on signaling for Zoom's 65 s (6.5 s here) and the worker re-handshakes.
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, reconnects__gte=1).exists(), "the silence to be noticed", timeout=15)
    stack.sim.delete("/_sim/faults")
    assert_data_flows_after(stack, django_db_blocker, meeting, stream_id, "Back after the silence")
