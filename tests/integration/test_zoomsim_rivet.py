"""Zoom's own Node library, Rivet (`@zoom/rivet` 0.4.0), as an outside judge of the simulator's webhooks (as Zoom's
RTMS SDK judges its RTMS side): a meeting is driven through the simulator and every signed delivery captured by a
receiver on 127.0.0.1, then

1. each delivery goes through Rivet's own receiver code, which verifies `x-zm-signature` over its own
   `JSON.stringify` of the body: a body that is not compact UTF-8 as Zoom sends it fails there;
2. every meeting event is written into a TypeScript file as a literal typed with Rivet's event type
   (`MeetingStartedEvent`, `MeetingParticipantJoinedEvent`, …) and checked with `tsc --strict`, so a missing,
   mistyped or extra field (object literals get excess-property checks) fails.

Node dependencies: tests/rivet/package.json and package-lock.json, installed with `npm ci` into var/cache/ the first
time (keyed by the lock file's hash); node_modules is never committed.
"""

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.npm_support import npm_installed
from tests.webhook_support import zoom_signature
from tests.zoomsim_client import sim_world

ROOT = Path(__file__).resolve().parents[2]
RIVET_SOURCES = ROOT / "tests" / "rivet"
RIVET_TYPES = {
    "meeting.started": "MeetingStartedEvent",
    "meeting.ended": "MeetingEndedEvent",
    "meeting.participant_joined": "MeetingParticipantJoinedEvent",
    "meeting.participant_left": "MeetingParticipantLeftEvent",
    "meeting.participant_role_changed": "MeetingParticipantRoleChangedEvent",
}
SECRET = "rivet-judge-secret"


@pytest.fixture(scope="session")
def rivet():
    """A directory holding tests/rivet's files and their node_modules (one `npm ci` per lock file)."""
    assert shutil.which("node"), "the Rivet judge needs node on PATH (apt-get install nodejs npm)"
    return npm_installed(RIVET_SOURCES, "rivet", "node_modules/@zoom/rivet/package.json", also_copy=("judge.mjs",))


def judge(rivet, deliveries, secret=SECRET):
    """Rivet's verdict on each delivery: [{statusCode, answer, dispatched}]."""
    document = {"secret": secret, "events": sorted(RIVET_TYPES),
                "deliveries": [{"headers": d["headers"], "body": d["raw"].decode("utf-8")} for d in deliveries]}
    done = subprocess.run(["node", "judge.mjs"], cwd=rivet, input=json.dumps(document), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def type_check(rivet, events):
    """tsc --strict over `events` ([(event name, body)]) typed as Rivet's event types; returns (returncode, output)."""
    lines = [f"import type {{ {', '.join(sorted(set(RIVET_TYPES.values())))} }} from \"@zoom/rivet/meetings\";"]
    for index, (name, body) in enumerate(events):
        lines.append(f"export const delivery{index}: {RIVET_TYPES[name]} = {json.dumps(body, ensure_ascii=False)};")
    source = rivet / f"checked-{uuid.uuid4().hex}.ts"
    source.write_text("\n".join(lines) + "\n")
    try:
        done = subprocess.run(
            [str(rivet / "node_modules" / ".bin" / "tsc"), "--noEmit", "--strict", "--skipLibCheck", "--target",
             "es2022", "--module", "nodenext", "--moduleResolution", "nodenext", source.name],
            cwd=rivet, capture_output=True, text=True, timeout=120)
    finally:
        source.unlink()
    return done.returncode, done.stdout + done.stderr


def signed(body, secret=SECRET):
    timestamp = str(int(time.time()))
    return {"headers": {"x-zm-request-timestamp": timestamp, "x-zm-signature": zoom_signature(secret, timestamp, body),
                        "content-type": "application/json"}, "raw": body}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with sim_world(tmp_path_factory.mktemp("zoomsim-rivet"), {"webhook_secret_token": SECRET},
                   retry_scale=0.0005) as world:
        yield world


def test_rivet_verifies_every_delivery_and_its_types_accept_every_meeting_event(world, rivet):
    meeting = world.meeting(participants=[{"name": "Zoë Ångström", "email": "zoe@example.test"}, {"name": "Ben"},
                                          {"name": "Gus", "guest": True}])
    ana, zoe, ben, gus = meeting["participants"]
    for key, role in ((zoe["key"], "co-host"), (gus["key"], "co-host"), (ben["key"], "host")):
        assert world.sim.post(f"/_sim/meetings/{meeting['id']}/role", json={"key": key, "role": role}).ok
    world.start_stream(meeting)
    for person in (gus, zoe):
        assert world.sim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": person["key"]}).ok
    world.sim.post(f"/_sim/meetings/{meeting['id']}/end")
    world.hook.wait_for("meeting.ended", lambda d: d["body"]["payload"]["object"]["uuid"] == meeting["uuid"])
    world.hook.wait_for("meeting.rtms_stopped", lambda d: d["body"]["payload"]["meeting_uuid"] == meeting["uuid"])
    deliveries = [d for d in world.hook.events() if meeting["uuid"] in (
        d["body"]["payload"].get("meeting_uuid"), d["body"]["payload"].get("object", {}).get("uuid"))]

    verdicts = judge(rivet, deliveries)
    refused = [(d["event"], v["answer"]) for d, v in zip(deliveries, verdicts) if v["statusCode"] != 200]
    assert not refused, refused
    meeting_events = [(d["event"], d["body"]) for d in deliveries if d["event"] in RIVET_TYPES]
    assert [v["dispatched"] for d, v in zip(deliveries, verdicts) if d["event"] in RIVET_TYPES] == [
        body for _, body in meeting_events]
    assert {name for name, _ in meeting_events} == set(RIVET_TYPES)
    assert {d["event"] for d in deliveries} >= {"meeting.rtms_started", "meeting.rtms_stopped"}
    print(f"\nRivet verified {len(deliveries)} deliveries; tsc checks {len(meeting_events)} meeting events")

    returncode, output = type_check(rivet, meeting_events)
    assert returncode == 0, output


def test_the_judges_refuse_what_zoom_would_not_send(rivet):
    """The judges are not rubber stamps: Rivet refuses bodies that are not compact UTF-8 or not signed with the
    secret, and tsc refuses the flat shape with a role that the simulator used to send."""
    started = {"event": "meeting.started", "event_ts": 1764446400000, "payload": {"account_id": "acctHost1", "object": {
        "id": "81234567890", "uuid": "4444AAAiAAAAAiAiAiiAii==", "host_id": "30R7kT7bTIKSNUFEuH_Qlg",
        "topic": "Café", "type": 2, "start_time": "2026-11-29T20:00:00Z", "timezone": "UTC", "duration": 60}}}
    compact = json.dumps(started, separators=(",", ":"), ensure_ascii=False).encode()
    spaced = json.dumps(started, ensure_ascii=False).encode()
    escaped = json.dumps(started, separators=(",", ":")).encode()  # "Caf\u00e9"
    verdicts = judge(rivet, [signed(compact), signed(spaced), signed(escaped), signed(compact, secret="another")])
    assert [v["statusCode"] for v in verdicts] == [200, 400, 400, 400]
    assert verdicts[1]["answer"] == {"error": "Failed to verify event originated from Zoom."}
    assert verdicts[0]["dispatched"] == started

    flat_with_role = {"event": "meeting.participant_joined", "event_ts": 1764446400000, "payload": {
        "meeting_uuid": "4444AAAiAAAAAiAiAiiAii==", "meeting_id": 81234567890, "host_id": "30R7kT7bTIKSNUFEuH_Qlg",
        "account_id": "acctHost1", "participant": {"user_id": "30R7kT7bTIKSNUFEuH_Qlg", "user_name": "Ana",
                                                   "role": "host", "join_time": 1764446400000}}}
    with_role = json.loads(json.dumps(started))
    with_role["event"] = "meeting.participant_joined"
    with_role["payload"]["object"]["participant"] = {"user_id": "16778240", "user_name": "Ana", "email": "",
                                                     "join_time": "2026-11-29T20:00:05Z", "role": "host"}
    for body in (flat_with_role, with_role):
        returncode, output = type_check(rivet, [("meeting.participant_joined", body)])
        assert returncode != 0 and "error TS" in output, output
    assert type_check(rivet, [("meeting.started", started)]) == (0, "")
