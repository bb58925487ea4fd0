"""Runs Zoom's official RTMS SDK (PyPI `rtms`) against a stream, recording every callback as JSON lines.

Usage: python rtms_sdk_join.py CONFIG.json   (run with the working directory in a temporary folder that has a
`logs/` subfolder: the SDK writes its native log there). CONFIG: {"payload": <meeting.rtms_started payload>,
"client_id", "client_secret", "out": path, "max_seconds": float}.

The SDK's C core must see alloc, join, poll and release on one thread (docs/ZOOM.md §13.3, §13.7), and `leave()`
must not run inside a callback: so this script polls the client itself on the main thread and leaves between
polls, after the stream's stop has been reported.
"""

import array
import json
import sys
import time

import rtms


def main():
    with open(sys.argv[1]) as config_file:
        config = json.load(config_file)
    out = open(config["out"], "a", buffering=1)  # noqa: SIM115 - written until the process ends
    state = {"left": None}

    def record(kind, **fields):
        out.write(json.dumps({"kind": kind, "at": time.time() * 1000, **fields}) + "\n")

    client = rtms.Client()
    loop = rtms.EventLoop(poll_interval=0.01, name="sdk-check")
    loop.add(client)

    @client.on_join_confirm
    def joined(reason):
        record("join_confirm", reason=reason)

    @client.on_session_update
    def session(op, info):
        record("session_update", op=op, session_id=getattr(info, "sessionId", None),
               status=getattr(info, "statTime", None))

    counts = {"audio": 0, "audio_bytes": 0, "voiced": 0, "peak": 0}

    @client.on_audio_data
    def audio(data, size, timestamp, metadata):
        counts["audio"] += 1
        counts["audio_bytes"] += len(data)
        samples = array.array("h", bytes(data)[: len(data) // 2 * 2])
        peak = max(map(abs, samples), default=0)
        counts["peak"] = max(counts["peak"], peak)
        counts["voiced"] += peak > 500
        if counts["audio"] == 1:
            record("audio", size=size, timestamp=timestamp, user_id=metadata.userId)

    @client.on_transcript_data
    def transcript(data, size, timestamp, metadata):
        record("transcript", text=bytes(data).decode("utf-8", "replace"), timestamp=timestamp,
               user_id=metadata.userId, user_name=metadata.userName)

    @client.on_leave
    def left(reason):
        record("leave", reason=reason)
        state["left"] = reason

    client.set_audio_params(rtms.AudioParams(
        content_type=rtms.AudioContentType.RAW_AUDIO, codec=rtms.AudioCodec.L16,
        sample_rate=rtms.AudioSampleRate.SR_16K, channel=rtms.AudioChannel.MONO,
        data_opt=rtms.AudioDataOption.AUDIO_MIXED_STREAM, duration=20, frame_size=320))
    payload = config["payload"]
    client.join(meeting_uuid=payload["meeting_uuid"], rtms_stream_id=payload["rtms_stream_id"],
                server_urls=payload["server_urls"], client=config["client_id"], secret=config["client_secret"])
    loop._drain_pending()  # alloc + join on this thread
    # Event subscriptions need the C handle, which exists only after alloc: register them now.
    @client.on_participant_event
    def participants(event, timestamp, people):
        record("participant_event", event=event, timestamp=timestamp, participants=people)

    @client.on_active_speaker_event
    def speaker(timestamp, user_id, user_name):
        record("active_speaker", timestamp=timestamp, user_id=user_id, user_name=user_name)

    @client.on_media_connection_interrupted
    def media_interrupted(timestamp):
        record("media_interrupted", timestamp=timestamp)
    record("started")
    deadline = time.monotonic() + config.get("max_seconds", 30)
    while state["left"] is None and time.monotonic() < deadline:
        client.poll()
        time.sleep(0.01)
    record("audio_total", frames=counts["audio"], bytes=counts["audio_bytes"], voiced=counts["voiced"],
           peak=counts["peak"])
    client.leave()  # between polls, on the polling thread
    record("done", left=state["left"])


if __name__ == "__main__":
    main()
