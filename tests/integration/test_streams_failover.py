"""kill -9 of the worker holding a stream: another worker holds it within the bound, the simulator never sees two
live signaling connections for it, and nothing Zoom sent after the takeover is lost."""

import time
from pathlib import Path

import pytest

from tests.integration.streams_stack import (
    overlapping_live_connections,
    streams_stack,
    wait_for_row,
)


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("failover"), "failover", django_db_blocker,
                       workers=("worker-a", "worker-b")) as stack:
        yield stack


def parent_pid(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def worker_holding(stack, owner):
    child_pid = int(owner.rsplit(":", 1)[1])
    return next(w for w in stack.workers if parent_pid(child_pid) == w.pid)


def test_kill_9_of_the_holder_moves_the_stream_without_loss(stack, django_db_blocker):
    from rtms.models import MediaFile, StreamSession, TranscriptSegment

    meeting, held = stack.hold_stream(django_db_blocker, "Failover")
    stream_id = held.rtms_stream_id
    first_owner = held.owner_worker
    stack.speak(meeting, "Before the crash")
    wait_for_row(django_db_blocker, lambda: TranscriptSegment.objects.filter(
        stream__rtms_stream_id=stream_id, text__icontains="before the crash").exists(), "the first line stored")

    victim = worker_holding(stack, first_owner)
    killed_at = time.monotonic()
    victim.kill()

    def taken_over():
        stream = StreamSession.objects.filter(rtms_stream_id=stream_id).first()
        return stream.owner_worker != first_owner and stream.state == "active" and stream
    moved = wait_for_row(django_db_blocker, taken_over, "another worker to hold the stream", timeout=20)
    takeover_seconds = time.monotonic() - killed_at
    print(f"\nfailover: stream held again by {moved.owner_worker} {takeover_seconds:.2f} s "
          f"after kill -9 of {first_owner}")
    assert moved.lease_generation > held.lease_generation

    lines = [f"After the takeover line {n}" for n in range(3)]
    for line in lines:
        stack.speak(meeting, line)
    wait_for_row(django_db_blocker, lambda: TranscriptSegment.objects.filter(
        stream__rtms_stream_id=stream_id, text__startswith="After the takeover").count() == len(lines),
        "every line spoken after the takeover to be stored")

    assert stack.sim.post(f"/_sim/meetings/{meeting['id']}/end").ok
    stopped = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="stopped").first(), "the stream to stop")
    assert stopped.stop_reason == 6

    signaling = stack.signaling_connections(stream_id)
    assert len(signaling) >= 2
    assert overlapping_live_connections(signaling) == []

    # Audio: what Zoom sent (including what it buffered while nobody held the stream) against what was stored, in
    # the segments of both holders; the killed one's last segment is uploaded from its spool by a live process of
    # the same node (rtms/spool.py).
    sent = stack.sim_stream(stream_id)["frames_sent"]["audio"]

    # Counted once the killed holder's spool is recovered: its open segment may never have been indexed (killed
    # before its first index write) while the new holder's first segment has already rolled (rolls are staggered).
    killed_host, killed_pid = first_owner.rsplit(":", 1)
    killed_spool = Path(stack.env["RTMS_SPOOL_DIR"]) / killed_host / f"p{killed_pid}"

    def stored_segments():
        segments = list(MediaFile.objects.filter(stream__rtms_stream_id=stream_id, kind="audio_mixed"))
        return not killed_spool.exists() and len(segments) >= 2 and all(s.stored for s in segments) and segments
    segments = wait_for_row(django_db_blocker, stored_segments, "every audio segment uploaded", timeout=20)
    stored = stack.audio_frames_stored(segments)
    lost = max(0, sent - stored)
    print(f"failover audio: {stored} of {sent} frames stored, {lost * 20} ms lost at the crash")
    assert lost * 20 <= 1000  # at most what the killed worker had received but not yet written


def test_sigterm_hands_the_stream_over_at_once(stack, django_db_blocker):
    from rtms.models import StreamSession, TranscriptSegment

    live_workers = [w for w in stack.workers if w.poll() is None]
    if len(live_workers) < 2:
        stack.start_worker(f"worker-{len(stack.workers) + 1}")
    meeting, held = stack.hold_stream(django_db_blocker, "Deploy")
    stream_id = held.rtms_stream_id
    holder = worker_holding(stack, held.owner_worker)

    stopped_at = time.monotonic()
    holder.stop()  # SIGTERM, as a deploy does
    moved = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="active").exclude(owner_worker=held.owner_worker).first(),
        "another worker to take the stream over", timeout=20)
    print(f"\nhandover: stream held again by {moved.owner_worker} {time.monotonic() - stopped_at:.2f} s after SIGTERM "
          f"(including the old worker's shutdown)")
    assert "streams handed over" in holder.log_text()

    stack.speak(meeting, "Said after the deploy")
    wait_for_row(django_db_blocker, lambda: TranscriptSegment.objects.filter(
        stream__rtms_stream_id=stream_id, text="Said after the deploy").exists(), "the line after the handover")
    assert overlapping_live_connections(stack.signaling_connections(stream_id)) == []
    stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")
