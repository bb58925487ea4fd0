"""The in-memory Zoom model that zoomsim/window builds on: change notifications, the in-client request/approve
flow with its refusals, and auto-start decisions."""

import pytest

from zoomsim.config import parse_config
from zoomsim.errors import StreamRefused
from zoomsim.state import Simulator


@pytest.fixture
async def sim():
    simulator = Simulator(parse_config(["--voice", "tones", "--port", "0", "--rtms-port", "0"]))
    await simulator.start()
    await simulator.rtms.listen("127.0.0.1", 0)
    simulator.set_urls("http://127.0.0.1:1", "ws://127.0.0.1:2")
    simulator.register_app({"name": "Notes", "client_id": "notes", "client_secret": "s", "event_url": ""})
    yield simulator
    await simulator.shutdown()


def _meeting(sim, **settings):
    return sim.create_meeting({"host": {"name": "Ana", "account_id": "acct"}, "participants": [{"name": "Ben"}],
                               "settings": settings, "start": True})


async def test_subscribers_hear_every_change(sim):
    heard = []
    unsubscribe = sim.subscribe(lambda kind, meeting: heard.append(kind))
    meeting = _meeting(sim)
    sim.set_video(meeting, meeting.participant("p2"), True)
    sim.chat(meeting, meeting.participant("p2"), "hi")
    sim.start_stream(meeting, sim.apps["notes"], meeting.participant("p1"))
    sim.end_meeting(meeting)
    unsubscribe()
    sim.create_meeting({"host": {"name": "Later"}})
    assert heard[:3] == ["meeting_started", "participant_joined", "participant_joined"]
    assert {"video", "chat", "stream_started", "stream_stopped", "meeting_ended"} <= set(heard)
    assert heard.count("meeting_created") == 1


async def test_a_broken_subscriber_does_not_break_the_simulation(sim):
    sim.subscribe(lambda kind, meeting: 1 / 0)
    assert _meeting(sim).live


async def test_participant_request_needs_the_host_and_approval(sim):
    meeting = _meeting(sim)
    app = sim.apps["notes"]
    ben = meeting.participant("p2")
    outcome, request = sim.request_stream(meeting, app, ben)
    assert outcome == "pending" and request["participant_key"] == "p2" and request["source"] == "app"
    assert sim.request_stream(meeting, app, ben) == ("pending", request)  # no duplicate request
    stream = sim.approve_request(meeting, request["id"])
    assert stream.operator is ben and stream.started_by == "host" and meeting.pending_requests == []
    _, again = sim.request_stream(_meeting(sim), app, ben)
    assert again["user_id"] == ben.user_id


async def test_denied_request_starts_nothing(sim):
    meeting = _meeting(sim)
    _, request = sim.request_stream(meeting, sim.apps["notes"], meeting.participant("p2"))
    sim.deny_request(meeting, request["id"])
    assert meeting.stream_ids == [] and meeting.pending_requests == []


async def test_refusal_outcomes(sim):
    app = sim.apps["notes"]
    meeting = _meeting(sim)
    sim.leave(meeting, meeting.participant("p1"))
    with pytest.raises(StreamRefused) as refused:
        sim.request_stream(meeting, app, meeting.participant("p2"))
    assert refused.value.outcome == "host_not_joined"
    off = _meeting(sim, share_with_apps=False)
    with pytest.raises(StreamRefused) as refused:
        sim.request_stream(off, app, off.participant("p2"))
    assert refused.value.outcome == "apps_disabled"
    sim.set_policy("account", "acct", {"share_with_apps": False})
    blocked = _meeting(sim)
    with pytest.raises(StreamRefused) as refused:
        sim.request_stream(blocked, app, blocked.participant("p2"))
    assert refused.value.outcome == "host_cannot_approve"


async def test_no_approval_needed_starts_at_once(sim):
    meeting = _meeting(sim, require_host_approval=False)
    outcome, stream = sim.request_stream(meeting, sim.apps["notes"], meeting.participant("p2"))
    assert outcome == "started" and stream.started_by == "app"


async def test_host_leaving_with_continuous_sharing_keeps_streams_and_role_change_moves_host(sim):
    meeting = _meeting(sim)
    stream = sim.start_stream(meeting, sim.apps["notes"], meeting.participant("p1"))
    sim.set_role(meeting, meeting.participant("p2"), "host")
    assert meeting.host.name == "Ben" and meeting.participant("p1").role == "co-host"
    sim.leave(meeting, meeting.participant("p1"))
    assert stream.live


async def test_speak_returns_the_line_times(sim):
    meeting = _meeting(sim)
    line = await sim.speak(meeting, meeting.participant("p2"), "hello world")
    assert line["end_time"] - line["start_time"] == line["ticks"] * 20 > 0
    not_started = sim.create_meeting({"host": {"name": "X"}})
    with pytest.raises(ValueError):
        sim.speak(not_started, not_started.participant("p1"), "nobody is there")
