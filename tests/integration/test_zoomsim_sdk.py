"""Zoom's official RTMS client (PyPI `rtms`, its closed C SDK) as an independent check of the simulator: it joins
a stream over ws://127.0.0.1, completes both handshakes, receives participant events, L16 audio and transcripts,
answers keep-alives and sees the stop reason. Any ERROR line in its native log fails the test."""

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.zoomsim_client import SimWorld, words_lasting
from tests.zoomsim_process import run_zoomsim

RUNNER = Path(__file__).resolve().parent.parent / "sdk" / "rtms_sdk_join.py"

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.machine() != "x86_64",
                                reason="the rtms SDK ships Linux x86_64 wheels only")


def _records(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_record(path, predicate, what, process, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in _records(path):
            if predicate(record):
                return record
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"the SDK never reported {what}; records: {_records(path)}")


def test_official_rtms_sdk_joins_receives_and_sees_the_stop_reason(tmp_path):
    pytest.importorskip("rtms")
    with run_zoomsim(tmp_path / "sim", keepalive_interval=0.5) as sim:
        world = SimWorld(sim)
        try:
            meeting = world.meeting(participants=[{"name": "Ben"}])
            payload = world.start_stream(meeting)
            workdir = tmp_path / "sdk"
            (workdir / "logs").mkdir(parents=True)
            out = workdir / "callbacks.jsonl"
            config = workdir / "config.json"
            config.write_text(json.dumps({"payload": payload, "client_id": world.client_id,
                                          "client_secret": world.client_secret, "out": str(out),
                                          "max_seconds": 40}))
            # The runner lives outside the project root, so `import rtms` finds the SDK, not our rtms/ package.
            with open(workdir / "stdout.txt", "wb") as stdout:
                process = subprocess.Popen([sys.executable, str(RUNNER), str(config)], cwd=workdir, stdout=stdout,
                                           stderr=subprocess.STDOUT)
            try:
                assert _wait_record(out, lambda r: r["kind"] == "join_confirm", "join", process)["reason"] == 0
                present = _wait_record(out, lambda r: r["kind"] == "participant_event", "participants", process)
                assert {p["user_name"] for p in present["participants"]} == {"Ana Host", "Ben"}
                line = world.speak(meeting, "Hello from Ben", key="p2")
                transcript = _wait_record(out, lambda r: r["kind"] == "transcript", "a transcript", process)
                assert transcript["text"] == "Hello from Ben" and transcript["user_name"] == "Ben"
                speaker = _wait_record(out, lambda r: r["kind"] == "active_speaker", "the active speaker", process)
                assert speaker["user_name"] == "Ben"
                cleo = sim.post(f"/_sim/meetings/{meeting['id']}/join", json={"name": "Cleo"}).json()
                joined = _wait_record(out, lambda r: r["kind"] == "participant_event" and any(
                    p["user_name"] == "Cleo" for p in r["participants"]), "Cleo joining", process)
                assert joined["participants"] == [{"user_id": cleo["rtms_user_id"], "user_name": "Cleo"}]
                # Keep-alives every 0.5 s on every socket carrying nothing else (docs/ZOOM.md §6.1), the audio
                # one too once the line is over: the stream only survives if the SDK answers them.
                line_frames = (line["end_time"] - line["start_time"]) // 20
                stream = world.wait_stream(payload["rtms_stream_id"], lambda s: all(
                    c["keepalive_answered"] >= 4 for c in s["connections"]), what="answered keep-alives")
                assert stream["state"] == "active" and stream["frames_sent"]["audio"] == line_frames
                sim.post(f"/_sim/meetings/{meeting['id']}/end")
                left = _wait_record(out, lambda r: r["kind"] == "leave", "the stop", process)
                assert left["reason"] == 6  # MEETING_ENDED
                process.wait(20)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            total = next(r for r in _records(out) if r["kind"] == "audio_total")
            # The line's mixed audio and nothing else: Zoom sends none in silence (docs/ZOOM.md §4.3).
            assert total["frames"] == line_frames and total["bytes"] == total["frames"] * 640  # L16 16 kHz mono
            assert total["voiced"] >= 10 and total["peak"] > 1000, "the SDK received real sound"
            stream = world.stream(payload["rtms_stream_id"])
            kinds = {c["kind"] for c in stream["connections"] if c["handshake_status"] == 0}
            assert kinds == {"signaling", "audio", "transcript"}  # one media socket per type (docs/ZOOM.md §13.7)
            assert all(c["client_agent"] for c in stream["connections"] if c["kind"] == "signaling")
            # What the real client sends on every upgrade (docs/ZOOM.md §13.7) was accepted.
            assert all(c["subprotocol_offered"] == "websocket" and c["has_websocket_token"]
                       and c["user_agent"] == "Mozilla/5.0 Zoom.App" for c in stream["connections"])
            logs = list((workdir / "logs").iterdir())
            assert logs, "the SDK wrote no native log"
            errors = [line for log in logs for line in log.read_bytes().decode("utf-8", "replace").splitlines()
                      if "\tERROR\t" in line or " ERROR " in line]
            assert errors == [], "\n".join(errors[:20])
        finally:
            world.close()



@pytest.mark.parametrize("chaos, reaction", [
    # SDK 1.1.0 reports the dropped media socket, closes everything and joins again a second later.
    ({"case": "media_drop", "socket": "audio", "state_update": True}, "media_interrupted"),
    ({"case": "error_stop", "reason": 13}, "leave"),
], ids=lambda value: value.get("case") if isinstance(value, dict) else value)
def test_official_rtms_sdk_reads_the_chaos_cases_without_an_error(tmp_path, chaos, reaction):
    """Zoom's SDK as the judge of the messages the chaos mode sends (EVENT_UPDATE 7 with STREAM_STATE_UPDATE 2 / 14
    beside it, an error stop): it reacts to each, and its native log has no ERROR line. Sockets that just die
    (signaling drop, server failover) send nothing new to judge; SDK 1.1.0 gives up on a lost signaling socket
    (reason 960, docs/ZOOM.md §13.7) and cannot hear a re-sent webhook."""
    pytest.importorskip("rtms")
    with run_zoomsim(tmp_path / "sim", keepalive_interval=0.5) as sim:
        world = SimWorld(sim)
        try:
            meeting = world.meeting(participants=[{"name": "Ben"}])
            payload = world.start_stream(meeting)
            workdir = tmp_path / "sdk"
            (workdir / "logs").mkdir(parents=True)
            out = workdir / "callbacks.jsonl"
            config = workdir / "config.json"
            config.write_text(json.dumps({"payload": payload, "client_id": world.client_id,
                                          "client_secret": world.client_secret, "out": str(out),
                                          "max_seconds": 20}))
            with open(workdir / "stdout.txt", "wb") as stdout:
                process = subprocess.Popen([sys.executable, str(RUNNER), str(config)], cwd=workdir, stdout=stdout,
                                           stderr=subprocess.STDOUT)
            try:
                assert _wait_record(out, lambda r: r["kind"] == "join_confirm", "join", process)["reason"] == 0
                world.speak(meeting, words_lasting(5), key="p2")
                _wait_record(out, lambda r: r["kind"] == "audio", "audio", process)
                played = sim.post(f"/_sim/streams/{payload['rtms_stream_id']}/chaos", json=chaos)
                assert played.status_code == 201, played.text
                seen = _wait_record(out, lambda r: r["kind"] == reaction, reaction, process)
                if chaos["case"] == "error_stop":
                    assert seen["reason"] == 13
                if chaos["case"] == "media_drop":
                    assert seen["timestamp"] >= played.json()["at"] - 1000
                    world.wait_stream(payload["rtms_stream_id"], lambda s: s["state"] == "active" and sum(
                        c["kind"] == "signaling" and c["handshake_status"] == 0 for c in s["connections"]) == 2,
                        what="the SDK to join again")
                sim.post(f"/_sim/meetings/{meeting['id']}/end")
                _wait_record(out, lambda r: r["kind"] == "done", "the SDK to finish", process)
                process.wait(20)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            logs = list((workdir / "logs").iterdir())
            assert logs, "the SDK wrote no native log"
            errors = [line for log in logs for line in log.read_bytes().decode("utf-8", "replace").splitlines()
                      if "\tERROR\t" in line or " ERROR " in line]
            assert errors == [], "\n".join(errors[:20])
        finally:
            world.close()
