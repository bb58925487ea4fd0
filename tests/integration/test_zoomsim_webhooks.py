"""Webhooks from the simulator (docs/ZOOM.md §2): signatures checked by an independent implementation of Zoom's
scheme (tests/zoomsim_client.py), compact bodies, RTMS events flat and meeting events in Zoom's nested shape
(§2.2b), URL validation on registration, the retry policy with scaled delays, the delivery log, and the webhook
faults."""

import json
import time

import pytest

from tests.zoomsim_client import SimWorld, WebhookReceiver, sim_world

RETRY_SCALE = 0.0005  # 5 min -> 0.15 s, 20 min -> 0.6 s, 60 min -> 1.8 s


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with sim_world(tmp_path_factory.mktemp("zoomsim-hooks"), retry_scale=RETRY_SCALE, reconnect_scale=0.02) as world:
        yield world


def meeting_of(payload):
    """RTMS events name the meeting `meeting_uuid` (flat); meeting events `object.uuid` (nested)."""
    return payload.get("meeting_uuid") or (payload.get("object") or {}).get("uuid")


def _log(world, event, meeting_uuid):
    deliveries = world.sim.get("/_sim/webhooks", params={"event": event}).json()
    return [d for d in deliveries if meeting_of(d["payload"]) == meeting_uuid]


def _wait_log(world, event, meeting_uuid, predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [d for d in _log(world, event, meeting_uuid) if predicate(d)]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"delivery log never matched for {event}: {_log(world, event, meeting_uuid)}")


def test_every_delivery_is_signed_compact_and_in_zooms_shape(world):
    meeting = world.meeting(participants=[{"name": "Ben Müller", "email": "ben@example.test"},
                                          {"name": "Gus", "guest": True}])
    ana, ben, gus = meeting["participants"]
    world.sim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": ben["key"]})
    payload, client = world.connected(meeting)
    client.signaling.close()
    world.hook.wait_for("meeting.rtms_interrupted", lambda d: meeting_of(d["body"]["payload"]) == meeting["uuid"])
    world.sim.post(f"/_sim/meetings/{meeting['id']}/end")
    world.hook.wait_for("meeting.ended", lambda d: meeting_of(d["body"]["payload"]) == meeting["uuid"])
    ours = [d for d in world.hook.events() if meeting_of(d["body"]["payload"]) == meeting["uuid"]]
    assert {d["event"] for d in ours} >= {
        "meeting.started", "meeting.participant_joined", "meeting.participant_left", "meeting.rtms_started",
        "meeting.rtms_interrupted", "meeting.rtms_stopped", "meeting.ended"}
    for delivery in ours:
        assert delivery["valid_signature"], delivery["event"]
        assert abs(int(delivery["headers"]["x-zm-request-timestamp"]) - time.time()) < 60
        body = delivery["body"]
        assert set(body) == {"event", "event_ts", "payload"} and isinstance(body["event_ts"], int)
        # Compact UTF-8, byte for byte what a re-serialising verifier (Rivet's JSON.stringify) rebuilds.
        assert delivery["raw"] == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        rtms = "rtms_" in delivery["event"]
        assert ("object" in body["payload"]) is not rtms, delivery["event"]

    # RTMS events: flat (§2.2).
    started = next(d for d in ours if d["event"] == "meeting.rtms_started")["body"]["payload"]
    assert set(started) == {"meeting_uuid", "operator_id", "rtms_stream_id", "server_urls"}
    assert started["operator_id"] == meeting["host_user_id"]
    stopped = next(d for d in ours if d["event"] == "meeting.rtms_stopped")["body"]["payload"]
    assert stopped == {"meeting_uuid": meeting["uuid"], "rtms_stream_id": payload["rtms_stream_id"], "stop_reason": 6}

    # Meeting events: account_id beside object; the meeting's uuid, numeric id (a string) and host's user id.
    for delivery in ours:
        if "rtms_" not in delivery["event"]:
            event_payload = delivery["body"]["payload"]
            assert set(event_payload) == {"account_id", "object"} and event_payload["account_id"] == "acct-host"
            assert (event_payload["object"]["uuid"], event_payload["object"]["id"],
                    event_payload["object"]["host_id"]) == (meeting["uuid"], str(meeting["id"]), ana["user_id"])
    joined = {d["body"]["payload"]["object"]["participant"]["user_name"]: d["body"]["payload"]["object"]
              for d in ours if d["event"] == "meeting.participant_joined"}
    # participant.user_id is the per-meeting participant id (digits), participant.id the Zoom user id; no role.
    assert joined["Ana Host"]["participant"]["id"] == joined["Ana Host"]["host_id"] == ana["user_id"]
    assert joined["Ben Müller"]["participant"] == {
        "user_id": str(ben["rtms_user_id"]), "user_name": "Ben Müller", "email": "ben@example.test",
        "id": ben["user_id"], "participant_user_id": ben["user_id"], "join_time": joined["Ben Müller"][
            "participant"]["join_time"]}
    assert joined["Ben Müller"]["participant"]["join_time"].endswith("Z")
    assert joined["Gus"]["participant"]["user_id"] == str(gus["rtms_user_id"])
    assert "id" not in joined["Gus"]["participant"] and "participant_user_id" not in joined["Gus"]["participant"]
    assert not any("role" in o["participant"] for o in joined.values())
    left = next(d for d in ours if d["event"] == "meeting.participant_left")["body"]["payload"]["object"]
    assert left["participant"]["id"] == ben["user_id"] and left["participant"]["leave_time"].endswith("Z")
    ended = next(d for d in ours if d["event"] == "meeting.ended")["body"]["payload"]["object"]
    assert ended["end_time"] >= ended["start_time"]


def test_role_changes_are_sent_as_participant_role_changed(world):
    meeting = world.meeting(participants=[{"name": "Ben"}, {"name": "Cy", "guest": True}])
    ana, ben, cy = meeting["participants"]
    world.sim.post(f"/_sim/meetings/{meeting['id']}/role", json={"key": ben["key"], "role": "co-host"})
    world.sim.post(f"/_sim/meetings/{meeting['id']}/role", json={"key": cy["key"], "role": "co-host"})
    world.sim.post(f"/_sim/meetings/{meeting['id']}/role", json={"key": ben["key"], "role": "host"})
    changes = world.hook.wait_for("meeting.participant_role_changed", lambda d: len(
        [x for x in world.hook.events("meeting.participant_role_changed")
         if meeting_of(x["body"]["payload"]) == meeting["uuid"]]) == 4)
    assert changes["valid_signature"]
    people = [x["body"]["payload"]["object"]["participant"] for x in world.hook.events(
        "meeting.participant_role_changed") if meeting_of(x["body"]["payload"]) == meeting["uuid"]]
    # The Zoom user id is participant_user_id here (Zoom's schema has no participant.id in this event).
    assert [(p["user_id"], p.get("participant_user_id"), p["old_role"], p["new_role"]) for p in people] == [
        (str(ben["rtms_user_id"]), ben["user_id"], "attendee", "co-host"),
        (str(cy["rtms_user_id"]), None, "attendee", "co-host"),
        (str(ben["rtms_user_id"]), ben["user_id"], "co-host", "host"),
        (str(ana["rtms_user_id"]), ana["user_id"], "host", "co-host")]
    assert not any("id" in p for p in people)


def test_registration_runs_url_validation(world):
    wrong_secret = WebhookReceiver("not-the-registered-secret")
    try:
        response = world.sim.post("/_sim/apps", json={
            "name": "Broken", "client_id": "broken-app", "client_secret": "s", "webhook_secret_token": "right",
            "event_url": wrong_secret.url})
        assert response.status_code == 400
        assert response.json()["error"] == "url_validation_failed"
        assert "encryptedToken" in response.json()["message"]
        unreachable = world.sim.post("/_sim/apps", json={
            "name": "Down", "client_id": "down-app", "client_secret": "s", "webhook_secret_token": "t",
            "event_url": "http://127.0.0.1:9/webhook"})
        assert unreachable.status_code == 400 and "failed" in unreachable.json()["message"]
        listed = {a["client_id"] for a in world.sim.get("/_sim/apps").json()}
        assert "broken-app" not in listed and "down-app" not in listed
    finally:
        wrong_secret.close()


def test_retries_with_zooms_delays_until_delivered(world):
    meeting = world.meeting(participants=())
    world.hook.fail_next["meeting.ended"] = 2
    world.sim.post(f"/_sim/meetings/{meeting['id']}/end")
    delivery = _wait_log(world, "meeting.ended", meeting["uuid"], lambda d: d["status"] == "delivered")[0]
    attempts = delivery["attempts"]
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert attempts[1]["at"] - attempts[0]["at"] >= 300_000 * RETRY_SCALE
    assert attempts[2]["at"] - attempts[1]["at"] >= 1_200_000 * RETRY_SCALE
    received = world.hook.events("meeting.ended")
    assert len([d for d in received if meeting_of(d["body"]["payload"]) == meeting["uuid"]]) == 3


def test_gives_up_after_three_retries(world):
    meeting = world.meeting(participants=())
    world.hook.fail_next["meeting.ended"] = 4
    world.sim.post(f"/_sim/meetings/{meeting['id']}/end")
    delivery = _wait_log(world, "meeting.ended", meeting["uuid"], lambda d: d["status"] == "failed")[0]
    assert len(delivery["attempts"]) == 4
    assert delivery["attempts"][3]["at"] - delivery["attempts"][2]["at"] >= 3_600_000 * RETRY_SCALE


def test_fault_webhook_fail_then_retry(world):
    world.sim.post("/_sim/faults", json={"kind": "webhook_fail", "event": "meeting.rtms_started", "count": 1})
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    delivery = _wait_log(world, "meeting.rtms_started", meeting["uuid"], lambda d: d["status"] == "delivered")[0]
    assert delivery["attempts"][0]["error"].startswith("injected fault")
    assert delivery["attempts"][1]["status_code"] == 200
    assert payload["meeting_uuid"] == meeting["uuid"]


def test_fault_webhook_duplicate(world):
    world.sim.post("/_sim/faults", json={"kind": "webhook_duplicate", "event": "meeting.rtms_started"})
    meeting = world.meeting()
    world.start_stream(meeting)
    copies = world.hook.wait_for("meeting.rtms_started", lambda d: len([
        x for x in world.hook.events("meeting.rtms_started")
        if meeting_of(x["body"]["payload"]) == meeting["uuid"]]) == 2)
    same = [x["raw"] for x in world.hook.events("meeting.rtms_started")
            if meeting_of(x["body"]["payload"]) == meeting["uuid"]]
    assert copies and same[0] == same[1]


def test_app_deauthorized(world):
    meeting = world.meeting()
    user_id = meeting["host_user_id"]
    world.sim.post(f"/_sim/apps/{world.client_id}/deauthorize", json={"user_id": user_id})
    delivery = world.hook.wait_for("app_deauthorized", lambda d: d["body"]["payload"]["user_id"] == user_id)
    payload = delivery["body"]["payload"]
    assert payload["client_id"] == world.client_id and payload["account_id"] == meeting["account_id"]
    assert delivery["valid_signature"]


def test_concurrency_limit(world):
    live = world.sim.get("/_sim/stats").json()["streams_live"]
    world.sim.put("/_sim/settings/account/app-owner-account", json={"concurrency_limit": live + 1})
    try:
        meeting = world.meeting()
        world.start_stream(meeting)
        refused = world.sim.post(f"/_sim/meetings/{meeting['id']}/streams", json={"client_id": world.client_id,
                                                                                 "key": "p2"})
        assert refused.status_code == 409 and refused.json()["error"] == "concurrency_limited"
        limited = world.hook.wait_for("rtms.concurrency_limited")["body"]["payload"]
        assert limited["concurrency_number"] == live + 1 and limited["id_field"] == "meeting_uuid"
        world.sim.post(f"/_sim/meetings/{meeting['id']}/end")
    finally:
        world.sim.put("/_sim/settings/account/app-owner-account", json={"concurrency_limit": None})


def test_a_deleted_app_is_sent_nothing_more_and_its_streams_end(world):
    """A developer deleting an app from the Marketplace: the retry of an event it failed is cancelled, later
    meetings' events do not reach it, and its stream ends."""
    doomed = SimWorld(world.sim, client_id="doomed-app", client_secret="doomed-secret",
                      webhook_secret_token="doomed-webhook-secret")
    try:
        meeting = doomed.meeting(participants=())
        stream = doomed.start_stream(meeting)
        doomed.hook.fail_next["meeting.participant_joined"] = 4  # every attempt, to be sure one is still due
        world.sim.post(f"/_sim/meetings/{meeting['id']}/join", json={"name": "Late Lea"})
        doomed.hook.wait_for("meeting.participant_joined", lambda d: d["answered"] == 500)

        assert world.sim.delete("/_sim/apps/doomed-app").status_code == 204
        attempts_seen = len(doomed.hook.events("meeting.participant_joined"))

        retried = _wait_log(world, "meeting.participant_joined", meeting["uuid"],
                            lambda d: d["client_id"] == "doomed-app" and d["status"] != "retrying"
                            and d["payload"]["object"]["participant"]["user_name"] == "Late Lea")[0]
        assert retried["status"] == "cancelled"
        assert len(doomed.hook.events("meeting.participant_joined")) <= attempts_seen + 1  # one may be in flight
        assert doomed.stream(stream["rtms_stream_id"])["state"] == "stopped"
        later = world.meeting(participants=())
        world.hook.wait_for("meeting.started", lambda d: meeting_of(d["body"]["payload"]) == later["uuid"])
        assert [d for d in doomed.hook.events() if meeting_of(d["body"]["payload"]) == later["uuid"]] == []
        assert "doomed-app" not in [app["client_id"] for app in world.sim.get("/_sim/apps").json()]
        assert world.sim.delete("/_sim/apps/doomed-app").status_code == 404
    finally:
        doomed.close()
