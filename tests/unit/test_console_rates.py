"""The live-streams table's data rates: counters that grow in 2-second batches read as a steady rate."""

from collections import deque

from zoomapp.console.streams_feed import with_rates


def snapshot(audio_bytes, transcript=0, state="active"):
    return {"streams": [{"stream_id": "s1", "state": state, "counters": {
        "audio_bytes": audio_bytes, "video_frames": 0, "transcript": transcript, "chat": 0}}]}


def test_batched_counters_read_as_a_steady_rate_not_spikes():
    history, rates = deque(), {}
    # 16 kHz 16-bit mono = 256 kbit/s = 32000 B/s; the counter moves in 2 s batches and one read misses a batch,
    # so the next one sees two at once (a 2 s delta would read 0 then 512 kbit/s).
    readings = [(0, 0), (2, 64000), (4, 64000), (6, 192000), (8, 256000), (10, 320000), (12, 384000), (14, 448000)]
    for now, audio in readings:
        row = with_rates(snapshot(audio), history, now)["streams"][0]
        rates[now] = row["rates"] and row["rates"]["audio_kbps"]
    assert rates[0] is rates[2] is rates[4] is None  # under 6 s of history: "measuring"
    assert all(0.75 * 256 <= rates[t] <= 1.25 * 256 for t in (6, 8, 10, 12, 14)), rates


def test_a_stopped_stream_has_no_rate_and_a_new_one_is_measured_from_its_first_sight():
    history = deque()
    with_rates({"streams": []}, history, 0)
    assert with_rates(snapshot(0), history, 5)["streams"][0]["rates"] is None
    assert with_rates(snapshot(0, transcript=3), history, 11)["streams"][0]["rates"]["transcript_per_min"] == 30.0
    assert with_rates(snapshot(0, state="stopped"), history, 13)["streams"][0]["rates"] is None
