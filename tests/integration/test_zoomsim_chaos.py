"""The simulator's chaos mode (zoomsim/README.md "Chaos") with our StreamClient on the other end: each of Zoom's
four reconnection cases as Zoom plays it (sockets, webhooks, refusals of a failed server), the random mode, and
the control API's refusals."""

import time

import pytest
import requests

from rtms.client import Outcome, Phase
from tests.integration.test_rtms_client import held_streams, hold, world  # noqa: F401 - fixtures
from tests.processes import wait_for
from tests.zoomsim_client import words_lasting


def chaos(sim_world, stream_id, **body):
    return sim_world.sim.post(f"/_sim/streams/{stream_id}/chaos", json=body)


def test_server_failover_resends_rtms_started_and_the_failed_server_refuses(world, held_streams):  # noqa: F811
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    stream_id = payload["rtms_stream_id"]
    held = hold(world, held_streams, payload)
    held.wait_ready()

    played = chaos(world, stream_id, case="server_failover")
    assert played.status_code == 201, played.text
    resent = world.hook.wait_for("meeting.rtms_started", lambda d: d["body"]["payload"]["rtms_stream_id"] == stream_id
                                 and d["body"]["payload"]["server_urls"] != payload["server_urls"])
    new_urls = resent["body"]["payload"]["server_urls"]
    assert new_urls == f"{played.json()['to']}/signaling/{stream_id}"
    assert not [d for d in world.hook.events("meeting.rtms_interrupted")
                if d["body"]["payload"]["rtms_stream_id"] == stream_id]
    # The failed server answers no upgrade for the stream.
    old = payload["server_urls"].replace("ws://", "http://")
    upgrade = requests.get(old, headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, timeout=5)
    assert upgrade.status_code == 503

    held.loop.call_soon_threadsafe(held.client.move_to, new_urls)  # what the app does with the webhook
    wait_for(lambda: any(c["server"] == played.json()["to"] and c["kind"] == "signaling"
                         and c["handshake_status"] == 0 for c in world.stream(stream_id)["connections"]),
             what="the client on the new server")
    held.wait_ready()
    moved_at = time.time() * 1000
    world.speak(meeting, words_lasting(2))
    wait_for(lambda: len(held.audio_after(moved_at)) >= 10, what="audio from the new server")
    assert world.stream(stream_id)["state"] == "active"
    held.close()


@pytest.mark.parametrize("state_update", [False, True])
def test_media_drop_sends_event_7_and_the_client_redoes_that_socket_alone(world, held_streams, state_update):  # noqa: F811
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    stream_id = payload["rtms_stream_id"]
    held = hold(world, held_streams, payload)
    held.wait_ready()
    world.speak(meeting, words_lasting(10))  # through the drop and the repair
    before = world.stream(stream_id)["connections"]

    played = chaos(world, stream_id, case="media_drop", socket="audio", state_update=state_update)
    assert played.status_code == 201, played.text
    wait_for(lambda: len(world.stream(stream_id)["connections"]) == len(before) + 1, what="one new socket")
    dropped_at = time.time() * 1000
    wait_for(lambda: len(held.audio_after(dropped_at)) >= 10, what="audio after the repair")
    assert any(event_type == 7 for event_type, _ in held.sink.events)
    assert [c["kind"] for c in world.stream(stream_id)["connections"][len(before):]] == ["audio"]
    assert held.client.counters.reconnects == 1
    held.close()


def test_error_stop_ends_the_stream_with_that_reason(world, held_streams):  # noqa: F811
    payload = world.start_stream(world.meeting())
    held = hold(world, held_streams, payload)
    held.wait_ready()
    assert chaos(world, payload["rtms_stream_id"], case="error_stop", reason=24).status_code == 201
    result = held.wait_result()
    assert result.outcome is Outcome.STOPPED and result.stop_reason == 24


def test_random_mode_plays_cases_until_stopped(world, held_streams):  # noqa: F811
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    held = hold(world, held_streams, payload)
    held.wait_ready()
    started = world.sim.post("/_sim/chaos", json={"interval_s": 0.3, "cases": ["media_drop", "signaling_drop"]})
    assert started.status_code == 201 and started.json()["mode"] is True
    try:
        wait_for(lambda: len(world.sim.get("/_sim/chaos").json()["played"]) >= 3, 15, "three cases played")
    finally:
        stopped = world.sim.delete("/_sim/chaos")
    assert stopped.json()["mode"] is False
    wait_for(lambda: held.client.phase is Phase.READY and world.stream(payload["rtms_stream_id"])["state"] == "active",
             15, "the client to ride it out")
    since = time.time() * 1000
    world.speak(meeting, words_lasting(2))
    wait_for(lambda: len(held.audio_after(since)) >= 10, what="audio after the chaos")
    held.close()


@pytest.mark.parametrize("body, message", [
    ({"case": "unplug"}, "case must be one of"),
    ({"case": "error_stop", "reason": 6}, "reason must be an error stop reason"),
    ({"case": "media_drop", "socket": "video"}, "no video connection"),
])
def test_chaos_refusals(world, held_streams, body, message):  # noqa: F811
    payload = world.start_stream(world.meeting())
    held = hold(world, held_streams, payload)
    held.wait_ready()
    response = chaos(world, payload["rtms_stream_id"], **body)
    assert response.status_code == 400 and response.json()["error"] == "bad_chaos"
    assert message in response.json()["message"]
    assert world.stream(payload["rtms_stream_id"])["state"] == "active"
    held.close()


def test_chaos_mode_refusals_and_unknown_streams(world):  # noqa: F811
    assert chaos(world, "0" * 32, case="error_stop").status_code == 404
    response = world.sim.post("/_sim/chaos", json={"interval_s": -1})
    assert response.status_code == 400 and "interval_s" in response.json()["message"]
    response = world.sim.post("/_sim/chaos", json={"interval_s": 1, "cases": ["media_drop", "nope"]})
    assert response.status_code == 400 and "cases" in response.json()["message"]
    assert world.sim.get("/_sim/chaos").json()["mode"] is False
