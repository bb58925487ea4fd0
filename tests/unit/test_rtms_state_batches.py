"""A run of queued state changes stored in one transaction (rtms.host._apply_in_order → services.change_states)
leaves every stream, its transitions and the announcements as change_state applied one by one would: no-ops,
a stopped stream staying stopped, session ids, claims reset, versions, two changes of one stream in order."""

import secrets

import pytest

from rtms import services, signals
from rtms.host import _apply_in_order
from rtms.models import StreamSession, StreamState, StreamTransition

pytestmark = pytest.mark.django_db(transaction=True)  # the announcements run after commit

State = StreamState
# Per stream: its state and claims before, then the changes queued for it (interleaved across streams below).
STREAMS = {
    "starting": (State.STARTING, 2, [(State.ACTIVE, {"reason": "connected", "worker": "w1", "session_id": "s1"})]),
    "active_noop": (State.ACTIVE, 0, [(State.ACTIVE, {"reason": "connected"})]),
    "active_claims": (State.ACTIVE, 3, [(State.ACTIVE, {"reason": "connected"})]),
    "new_session": (State.ACTIVE, 0, [(State.ACTIVE, {"reason": "reconnected", "session_id": "s2"})]),
    "stopped": (State.STOPPED, 1, [(State.ACTIVE, {"reason": "connected"})]),
    "twice": (State.INTERRUPTED, 1, [(State.ACTIVE, {"reason": "connected"}),
                                     (State.PAUSED, {"reason": "paused by zoom"})]),
    "then_stopped": (State.STARTING, 0, [(State.ACTIVE, {"reason": "connected"}),
                                         (State.STOPPED, {"reason": "x" * 300, "stop_reason": 6}),
                                         (State.ACTIVE, {"reason": "connected"})]),
}


def _make_streams(prefix):
    StreamSession.objects.bulk_create([
        StreamSession(rtms_stream_id=f"{prefix}{name}", meeting_uuid=f"m-{prefix}{name}", client_id="app",
                      state=state, connect_claims=claims, rtms_session_id="s0" if state == State.ACTIVE else "",
                      stopped_at=None) for name, (state, claims, _) in STREAMS.items()])
    changes, longest = [], max(len(queued) for _, _, queued in STREAMS.values())
    for step in range(longest):  # interleaved, as streams connecting at once queue them
        for name, (_, _, queued) in STREAMS.items():
            if step < len(queued):
                state, kwargs = queued[step]
                changes.append((services.change_state, (f"{prefix}{name}", state), kwargs))
    changes.append((services.change_state, (f"{prefix}unknown", State.ACTIVE), {}))
    return changes


def _outcome(prefix):
    streams = {s.rtms_stream_id.removeprefix(prefix): (
        s.state, s.version, s.rtms_session_id, s.started_at is not None, s.desired_state, s.stopped_at is not None,
        s.stop_reason, s.stop_reason_name, s.connect_claims) for s in StreamSession.objects.filter(
        rtms_stream_id__startswith=prefix)}
    transitions = [(t.stream.rtms_stream_id.removeprefix(prefix), t.previous, t.state, t.reason, t.stop_reason,
                    t.worker) for t in StreamTransition.objects.filter(
        stream__rtms_stream_id__startswith=prefix).select_related("stream").order_by("id")]
    return streams, transitions


@pytest.fixture
def announced():
    seen = []

    def record(sender, stream, previous, reason, **kwargs):
        seen.append((stream.rtms_stream_id.split("-", 1)[1], previous, stream.state, stream.version, reason))

    signals.stream_state_changed.connect(record, dispatch_uid="test.state_batches")
    yield seen
    signals.stream_state_changed.disconnect(dispatch_uid="test.state_batches")


def _one_by_one(announced):
    prefix = f"{secrets.token_hex(3)}-"
    for _, args, kwargs in _make_streams(prefix):
        services.change_state(*args, **kwargs)
    expected_announcements = list(announced)
    announced.clear()
    return prefix, expected_announcements


def test_a_batch_ends_as_one_by_one(announced):
    one_by_one, expected_announcements = _one_by_one(announced)
    batched = f"{secrets.token_hex(3)}-"
    services.change_states([(args, kwargs) for _, args, kwargs in _make_streams(batched)])

    assert _outcome(batched) == _outcome(one_by_one)
    assert announced == expected_announcements
    streams, _ = _outcome(batched)
    assert streams["twice"][0] == State.PAUSED and streams["then_stopped"][0] == State.STOPPED
    assert streams["stopped"][0] == State.STOPPED and streams["active_claims"][8] == 0


def test_the_host_stores_a_run_of_changes_as_one_by_one(announced):
    """The host's state thread, with another kind of change ending the run: every change counted as done."""
    one_by_one, expected_announcements = _one_by_one(announced)
    batched = f"{secrets.token_hex(3)}-"
    changes = [*_make_streams(batched), (services.count_reconnect, (f"{batched}twice",), {})]
    assert _apply_in_order(changes) == (len(changes), None)

    assert _outcome(batched) == _outcome(one_by_one)
    assert announced == expected_announcements
    assert StreamSession.objects.get(rtms_stream_id=f"{batched}twice").reconnects == 1
