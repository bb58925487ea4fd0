"""The simulator as a program and its meeting model through the control API: CLI/ready file/shutdown, meetings,
participants, admin policy and Zoom-side auto-start, scripted meetings and the apps file."""

import json
from urllib.parse import quote

import pytest

from tests.processes import wait_for
from tests.zoomsim_client import SimWorld, WebhookReceiver, sim_world, words_lasting
from tests.zoomsim_process import run_zoomsim


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with sim_world(tmp_path_factory.mktemp("zoomsim-meetings"), retry_scale=0.0005) as world:
        yield world




def test_ready_file_banner_and_clean_shutdown(tmp_path):
    with run_zoomsim(tmp_path) as sim:
        assert sim.http_url.startswith("http://127.0.0.1:") and sim.rtms_url.startswith("ws://127.0.0.1:")
        assert sim.get("/_sim/meetings").json() == []
        assert f"zoomsim ready {sim.http_url}" in sim.log_text()
    assert sim.popen.returncode == 0  # SIGTERM stops it cleanly


def test_meeting_shape_and_lookup(world):
    meeting = world.meeting(participants=[{"name": "Ben", "email": "ben@example.test"},
                                          {"name": "Cora", "role": "co-host"}])
    assert len(str(meeting["id"])) == 11 and meeting["uuid"].endswith("==") and "/" not in meeting["uuid"]
    assert meeting["status"] == "started"
    keys = [p["key"] for p in meeting["participants"]]
    assert keys == ["p1", "p2", "p3"]
    assert [p["role"] for p in meeting["participants"]] == ["host", "participant", "co-host"]
    assert [p["rtms_user_id"] for p in meeting["participants"]] == [16778240, 16779264, 16780288]
    assert all(p["joined"] and len(p["user_id"]) == 22 for p in meeting["participants"])
    assert meeting["participants"][1]["email"] == "ben@example.test"
    by_uuid = world.sim.get("/_sim/meetings/" + quote(meeting["uuid"], safe="")).json()
    assert by_uuid["id"] == meeting["id"]
    assert world.sim.get("/_sim/meetings/123").status_code == 404


def test_join_leave_role_and_end(world):
    meeting = world.meeting(start=False)
    assert meeting["status"] == "waiting" and not any(p["joined"] for p in meeting["participants"])
    world.sim.post(f"/_sim/meetings/{meeting['id']}/start")
    dan = world.sim.post(f"/_sim/meetings/{meeting['id']}/join", json={"name": "Dan", "guest": True}).json()
    assert dan["guest"] and dan["user_id"] == "" and dan["joined"]
    world.sim.post(f"/_sim/meetings/{meeting['id']}/role", json={"key": dan["key"], "role": "co-host"})
    world.sim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": "p2"})
    state = world.sim.get(f"/_sim/meetings/{meeting['id']}").json()
    people = {p["key"]: p for p in state["participants"]}
    assert people[dan["key"]]["role"] == "co-host" and not people["p2"]["joined"]
    bad_role = world.sim.post(f"/_sim/meetings/{meeting['id']}/role", json={"key": "p2", "role": "king"})
    assert bad_role.status_code == 400
    world.sim.post(f"/_sim/meetings/{meeting['id']}/end")
    ended = world.sim.get(f"/_sim/meetings/{meeting['id']}").json()
    assert ended["status"] == "ended" and ended["ended_at"] and not any(p["joined"] for p in ended["participants"])
    world.hook.wait_for("meeting.ended", lambda d: d["body"]["payload"]["object"]["uuid"] == meeting["uuid"])


def test_auto_start_for_a_user_of_the_hosts_account(world):
    host = world.sim.post("/_sim/users", json={"name": "Auto Host", "account_id": "acct-auto"}).json()
    world.sim.put("/_sim/settings/account/acct-auto", json={"auto_start_apps": [world.client_id]})
    meeting = world.meeting(host={"user_id": host["user_id"]}, participants=())
    started = world.hook.wait_for("meeting.rtms_started", lambda d: d["body"]["payload"]["meeting_uuid"] ==
                                  meeting["uuid"])["body"]["payload"]
    assert started["operator_id"] == host["user_id"]
    stream = world.stream(started["rtms_stream_id"])
    assert stream["started_by"] == "auto" and stream["client_id"] == world.client_id


def test_auto_start_from_another_account_waits_for_host_approval(world):
    world.sim.put("/_sim/settings/account/acct-visitor", json={"auto_start_apps": [world.client_id]})
    meeting = world.meeting(participants=())
    visitor = world.sim.post(f"/_sim/meetings/{meeting['id']}/join",
                             json={"name": "Vic Visitor", "account_id": "acct-visitor"}).json()
    state = world.sim.get(f"/_sim/meetings/{meeting['id']}").json()
    assert state["streams"] == []
    [request] = state["pending_requests"]
    assert request["source"] == "auto" and request["participant_key"] == visitor["key"]
    assert request["client_id"] == world.client_id


def test_policy_precedence_user_over_group_over_account(world):
    world.sim.put("/_sim/settings/account/acct-policy", json={"share_with_apps": False})
    world.sim.put("/_sim/settings/group/grp-policy", json={"share_with_apps": True})
    meeting = world.meeting(host={"name": "Pol", "account_id": "acct-policy", "group_id": "grp-policy"})
    assert world.sim.post(f"/_sim/meetings/{meeting['id']}/streams",
                          json={"client_id": world.client_id}).status_code == 201
    world.sim.put(f"/_sim/settings/user/{meeting['host_user_id']}", json={"share_with_apps": False})
    refused = world.sim.post(f"/_sim/meetings/{meeting['id']}/streams", json={"client_id": world.client_id,
                                                                             "key": "p2"})
    assert refused.status_code == 409 and refused.json()["error"] == "host_cannot_approve"
    rows = world.sim.get("/_sim/settings").json()
    assert {"level": "group", "id": "grp-policy", "share_with_apps": True} in rows


def test_scripted_meeting_through_the_control_api(world):
    script = {"meeting": {"topic": "Scripted", "host": {"name": "Sam"}, "participants": [{"name": "Tia"}]},
              "events": [{"at": 0, "do": "start"}, {"at": 0.1, "do": "join", "who": "Tia"},
                         {"at": 0.2, "do": "speak", "who": "Tia", "text": "Scripted hello"},
                         {"at": 0.3, "do": "video", "who": "Tia", "on": True},
                         {"at": 2.5, "do": "end"}]}
    meeting = world.sim.post("/_sim/scripts", json=script).json()
    spoke = wait_for(lambda: world.sim.get(f"/_sim/meetings/{meeting['id']}").json()["active_speaker"] == "p2",
                     what="Tia to speak")
    assert spoke
    ended = wait_for(lambda: (m := world.sim.get(f"/_sim/meetings/{meeting['id']}").json())["status"] == "ended" and m,
                     what="the scripted end")
    assert ended["participants"][1]["video"] is False  # leaving (the end) turns video off
    bad = world.sim.post("/_sim/scripts", json={"meeting": {"host": {"name": "X"}}, "events": [{"do": "fly"}]})
    assert bad.status_code == 400


def test_apps_file_and_script_file_at_start(tmp_path):
    hook = WebhookReceiver("file-secret")
    apps = tmp_path / "apps.json"
    apps.write_text(json.dumps([{"name": "From file", "client_id": "file-app", "client_secret": "fs",
                                 "webhook_secret_token": "file-secret", "event_url": hook.url}]))
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"meeting": {"topic": "Demo", "host": {"name": "Ana"}},
                                  "events": [{"at": 0, "do": "start"}]}))
    try:
        with run_zoomsim(tmp_path, apps_file=apps, script=script) as sim:
            app = wait_for(lambda: next((a for a in sim.get("/_sim/apps").json() if a["validated_at"]), None),
                           what="the file's app to be validated")
            assert app["client_id"] == "file-app"
            hook.wait_for("meeting.started")
            assert [m["topic"] for m in sim.get("/_sim/meetings").json()] == ["Demo"]
    finally:
        hook.close()


def test_clock_scale_accelerates_media(tmp_path):
    with run_zoomsim(tmp_path, clock_scale=4) as sim:
        world = SimWorld(sim)
        try:
            meeting = world.meeting()
            payload, client = world.connected(meeting)
            world.speak(meeting, words_lasting(2))
            first = client.media["audio"].recv_type(14)
            for _ in range(49):
                last = client.media["audio"].recv_type(14)
            simulated = last["content"]["timestamp"] - first["content"]["timestamp"]
            real = last["_received_ms"] - first["_received_ms"]
            assert simulated == 980 and real < simulated / 2  # 4x: about 245 ms of real time
            client.close()
        finally:
            world.close()


def test_in_client_request_approve_and_deny(world):
    meeting = world.meeting(participants=[{"name": "Ben"}, {"name": "Cy"}])
    url = f"/_sim/meetings/{meeting['id']}/requests"
    pending = world.sim.post(url, json={"client_id": world.client_id, "key": "p2"})
    assert pending.status_code == 202 and pending.json()["outcome"] == "pending"
    request_id = pending.json()["request"]["id"]
    approved = world.sim.post(f"{url}/{request_id}/approve")
    assert approved.status_code == 201 and approved.json()["stream"]["operator_key"] == "p2"
    world.hook.wait_for("meeting.rtms_started", lambda d: d["body"]["payload"]["rtms_stream_id"] ==
                        approved.json()["stream"]["id"])
    denied_id = world.sim.post(url, json={"client_id": world.client_id, "key": "p3"}).json()["request"]["id"]
    assert world.sim.post(f"{url}/{denied_id}/deny").json()["outcome"] == "denied"
    assert world.sim.post(f"{url}/{denied_id}/approve").status_code == 404
    host = world.sim.post(url, json={"client_id": world.client_id, "key": "p1"})
    assert host.status_code == 201  # the host needs nobody's approval
    world.sim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": "p1"})
    world.sim.post(f"/_sim/meetings/{meeting['id']}/apps/{world.client_id}/disable")
    refused = world.sim.post(url, json={"client_id": world.client_id, "key": "p3"})
    assert refused.status_code == 409 and refused.json()["error"] == "host_not_joined"
