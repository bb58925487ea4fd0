"""Zoom's four reconnection cases (docs/STREAMS.md), each played by the simulator's chaos mode on a stream a real
worker holds (timings scaled ×0.1 as in the other stream tests). Each test prints how long the stream was without
a connection, from the simulator's own connection records, and checks the transcript: every line once, none lost.

Run with `-s` to see the figures.
"""

import pytest

from tests.integration.streams_stack import (
    overlapping_live_connections,
    streams_stack,
    wait_for_row,
)


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("zoom-failover"), "zoom-failover",
                       django_db_blocker) as stack:
        yield stack


def chaos(stack, stream_id, **body):
    response = stack.sim.post(f"/_sim/streams/{stream_id}/chaos", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def handshaken(stack, stream_id, kind=None):
    return [c for c in stack.sim_stream(stream_id)["connections"]
            if c["handshake_status"] == 0 and (kind is None or c["kind"] == kind)]


def seconds_without(stack, stream_id, lost, regained):
    """From the last lost socket closing to the last of its replacements opening (simulator clock, ms)."""
    lost_ids = {c["id"] for c in lost}
    closed = [c["closed_at"] for c in stack.sim_stream(stream_id)["connections"] if c["id"] in lost_ids]
    return (max(c["opened_at"] for c in regained) - max(closed)) / 1000


def say_and_check_transcript(stack, django_db_blocker, meeting, stream_id, lines, said_before=()):
    """Say `lines`; they and the lines `said_before` are stored, each exactly once, and nothing else is stored twice."""
    from rtms.models import TranscriptSegment

    for line in lines:
        stack.speak(meeting, line)
    lines = [*said_before, *lines]
    wait_for_row(django_db_blocker, lambda: TranscriptSegment.objects.filter(
        stream__rtms_stream_id=stream_id, text__in=lines).count() >= len(lines), "every line to be stored")
    with django_db_blocker.unblock():
        texts = list(TranscriptSegment.objects.filter(stream__rtms_stream_id=stream_id).values_list("text", flat=True))
    assert sorted(t for t in texts if t in lines) == sorted(lines), texts
    assert len(texts) == len(set(texts)), f"a line was stored twice: {texts}"


def audio_after_the_meeting(stack, django_db_blocker, meeting, stream_id):
    """End the meeting; (frames Zoom sent, frames stored) of the mixed audio. Replays are written once (by their
    timestamps), so stored never exceeds sent; what is missing was lost in a dying socket and never resent."""
    from rtms import leases
    from rtms.models import MediaFile, StreamSession

    assert stack.sim.post(f"/_sim/meetings/{meeting['id']}/end").ok
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="stopped").exists(), "the stream to stop")
    # The holder lets the lease go only once its final index is written: before, the index may list only the
    # segments closed so far (a segment that rolled during the test, all stored, and not yet the open one).
    wait_for_row(django_db_blocker, lambda: leases.holders([stream_id])[stream_id] is None,
                 "the holder to write its final index and let the stream go")
    sent = stack.sim_stream(stream_id)["frames_sent"]["audio"]

    def stored_frames():
        """Frames in every segment's WAV file (a segment may roll during the test), once all are stored."""
        segments = list(MediaFile.objects.filter(stream__rtms_stream_id=stream_id, kind="audio_mixed", bytes__gt=0))
        if segments and all(segment.stored for segment in segments):
            return stack.audio_frames_stored(segments)
        return None

    return sent, wait_for_row(django_db_blocker, stored_frames, "every audio segment stored")


def final_state(django_db_blocker, stream_id):
    from rtms.models import StreamSession

    with django_db_blocker.unblock():
        stream = StreamSession.objects.get(rtms_stream_id=stream_id)
        return stream, list(stream.transitions.values_list("state", "reason"))


def test_case_1_a_failed_rtms_server_moves_the_stream_at_once(stack, django_db_blocker, held_stream):
    from rtms.models import StreamSession

    meeting, stream_id = held_stream
    say_and_check_transcript(stack, django_db_blocker, meeting, stream_id, ["Before the server fails"])
    before = final_state(django_db_blocker, stream_id)[0]
    old_sockets = handshaken(stack, stream_id)
    # Zoom's webhook retry of the re-sent rtms_started arrives too: an identical re-send must change nothing.
    stack.fault(kind="webhook_duplicate", event="meeting.rtms_started", client_id=stack.app.client_id)
    played = chaos(stack, stream_id, case="server_failover")
    assert played["to"] != played["from"]

    def on_new_server():
        fresh = [c for c in handshaken(stack, stream_id) if c["server"] == played["to"]]
        return len(fresh) == len(old_sockets) and fresh
    fresh = wait_for_row(django_db_blocker, lambda: on_new_server(), "every socket on the new server", timeout=10)
    gap = seconds_without(stack, stream_id, old_sockets, fresh)
    print(f"\ncase 1 (RTMS server failover): {gap:.2f} s without a connection")
    assert gap < 5, "case 1 must recover in a few seconds, well inside Zoom's 60 s"

    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="active", server_urls__startswith=played["to"]).exists(),
        "the stream to be active on the new server")
    say_and_check_transcript(stack, django_db_blocker, meeting, stream_id,
                             ["After the failover line one", "After the failover line two"],
                             said_before=["Before the server fails"])
    stream, transitions = final_state(django_db_blocker, stream_id)
    deliveries = stack.sim.get("/_sim/webhooks", params={"event": "meeting.rtms_started",
                                                         "client_id": stack.app.client_id}).json()
    assert len([d for d in deliveries if d["payload"]["rtms_stream_id"] == stream_id]) == 3  # start, move, retry
    assert len(handshaken(stack, stream_id, "signaling")) == 2, "the retried rtms_started made no connection"
    assert overlapping_live_connections(handshaken(stack, stream_id, "signaling")) == []
    assert stream.lease_generation == before.lease_generation and stream.owner_worker == before.owner_worker
    assert transitions[-1][0] == "active"
    sent, stored = audio_after_the_meeting(stack, django_db_blocker, meeting, stream_id)
    print(f"case 1 audio: {stored} of {sent} frames stored")
    assert stored <= sent and sent - stored <= 10


def test_case_2_rtms_interrupted_redoes_signaling_and_media(stack, django_db_blocker, held_stream):
    from rtms.models import StreamSession
    from zoomapp.webhooks.models import WebhookDelivery

    meeting, stream_id = held_stream
    old_sockets = handshaken(stack, stream_id)
    chaos(stack, stream_id, case="signaling_drop")
    stack.speak(meeting, "Said while signaling was down")  # Zoom holds the line until the socket is back

    def all_back():
        fresh = [c for c in handshaken(stack, stream_id) if c["opened_at"] > max(o["opened_at"] for o in old_sockets)]
        return len(fresh) == len(old_sockets) and fresh
    fresh = wait_for_row(django_db_blocker, lambda: all_back(), "signaling and every media socket again", timeout=15)
    gap = seconds_without(stack, stream_id, old_sockets, fresh)
    print(f"\ncase 2 (signaling dropped, rtms_interrupted): {gap:.2f} s without a connection")
    assert gap < 10

    wait_for_row(django_db_blocker, lambda: WebhookDelivery.objects.filter(
        event="meeting.rtms_interrupted", rtms_stream_id=stream_id).exists(), "Zoom's rtms_interrupted")
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="active", reconnects=1).exists(), "the stream active again")
    say_and_check_transcript(stack, django_db_blocker, meeting, stream_id, ["After the interruption"],
                             said_before=["Said while signaling was down"])
    stream, transitions = final_state(django_db_blocker, stream_id)
    assert stream.state == "active", "Zoom's late rtms_interrupted must not mark a reconnected stream interrupted"
    assert [state for state, _ in transitions].count("interrupted") == 1
    assert overlapping_live_connections(handshaken(stack, stream_id, "signaling")) == []
    sent, stored = audio_after_the_meeting(stack, django_db_blocker, meeting, stream_id)
    print(f"case 2 audio: {stored} of {sent} frames stored")
    assert stored <= sent and sent - stored <= 10


def test_case_2_rtms_interrupted_while_the_sockets_still_look_open(stack, django_db_blocker, held_stream):
    from rtms.models import StreamSession

    meeting, stream_id = held_stream
    old_sockets = handshaken(stack, stream_id)
    played = chaos(stack, stream_id, case="signaling_drop", half_open=True)

    def all_back():
        fresh = [c for c in handshaken(stack, stream_id) if c["opened_at"] > max(o["opened_at"] for o in old_sockets)]
        return len(fresh) == len(old_sockets) and fresh
    fresh = wait_for_row(django_db_blocker, lambda: all_back(), "signaling and every media socket again", timeout=15)
    gap = (max(c["opened_at"] for c in fresh) - played["at"]) / 1000
    print(f"\ncase 2 (half-open sockets, only rtms_interrupted tells): {gap:.2f} s without a connection")
    assert gap < 5
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="active", reconnects__gte=1).exists(), "the stream active again")
    say_and_check_transcript(stack, django_db_blocker, meeting, stream_id, ["After the half-open interruption"])
    assert overlapping_live_connections(handshaken(stack, stream_id, "signaling")) == []


def test_case_2_a_paused_stream_is_paused_again_after_the_interruption(stack, django_db_blocker, held_stream):
    """Zoom keeps a pause across a reconnection (docs/STREAMS.md "Paused streams"): once reconnected the holder
    records the stream paused, never active, and Zoom's rtms_interrupted arriving after that leaves it paused, so
    the host can still resume it."""
    from rtms.models import StreamSession, StreamTransition
    from zoomapp.webhooks.models import WebhookDelivery

    _, stream_id = held_stream
    stack.sim.post(f"/_sim/streams/{stream_id}/pause").raise_for_status()
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="paused").exists(), "the stream paused")
    with django_db_blocker.unblock():
        paused = StreamTransition.objects.filter(stream__rtms_stream_id=stream_id).latest("pk").pk
    old_sockets = handshaken(stack, stream_id)
    # Zoom's first two deliveries fail: its retry (0.3 + 1.2 s here) lands after the holder is back.
    stack.fault(kind="webhook_fail", event="meeting.rtms_interrupted", count=2)
    chaos(stack, stream_id, case="signaling_drop")

    def all_back():
        fresh = [c for c in handshaken(stack, stream_id) if c["opened_at"] > max(o["opened_at"] for o in old_sockets)]
        return len(fresh) == len(old_sockets) and fresh
    wait_for_row(django_db_blocker, lambda: all_back(), "signaling and every media socket again", timeout=15)
    wait_for_row(django_db_blocker, lambda: WebhookDelivery.objects.filter(
        event="meeting.rtms_interrupted", rtms_stream_id=stream_id).exists(), "Zoom's late rtms_interrupted")
    with django_db_blocker.unblock():
        since_pause = list(StreamTransition.objects.filter(stream__rtms_stream_id=stream_id, pk__gt=paused)
                           .order_by("pk").values_list("state", flat=True))
        state = StreamSession.objects.get(rtms_stream_id=stream_id).state
    assert state == "paused" and since_pause[-1] == "paused", since_pause
    assert "active" not in since_pause, f"a reconnection alone read as the end of the pause: {since_pause}"
    assert stack.sim_stream(stream_id)["state"] == "paused"

    stack.sim.post(f"/_sim/streams/{stream_id}/resume").raise_for_status()
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="active").exists(), "the stream resumed")


def test_case_3_a_dropped_media_socket_is_redone_alone(stack, django_db_blocker, held_stream):
    from rtms.models import StreamSession

    meeting, stream_id = held_stream
    old_sockets = handshaken(stack, stream_id)
    signaling = handshaken(stack, stream_id, "signaling")
    # Zoom's EVENT_UPDATE 7 and the STREAM_STATE_UPDATE 2 / reason 14 that says the same: one repair.
    played = chaos(stack, stream_id, case="media_drop", socket="audio", state_update=True)
    stack.speak(meeting, "Said while the audio socket was down")

    lost = [c for c in handshaken(stack, stream_id) if c["id"] in played["dropped"]]
    kind = lost[0]["kind"]  # "audio", or "all" when the worker holds streams on one media socket

    def media_back():
        return [c for c in handshaken(stack, stream_id, kind) if c["id"] not in played["dropped"]]
    fresh = wait_for_row(django_db_blocker, media_back, f"a new {kind} socket", timeout=10)
    gap = seconds_without(stack, stream_id, lost, fresh)
    print(f"\ncase 3 (the media socket carrying audio dropped): {gap:.2f} s without it, signaling kept")
    assert gap < 3, "case 3 must recover in a few seconds"

    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="active", reconnects=1).exists(), "the stream active again")
    say_and_check_transcript(stack, django_db_blocker, meeting, stream_id, ["After the media repair"],
                             said_before=["Said while the audio socket was down"])
    now = handshaken(stack, stream_id)
    kept = handshaken(stack, stream_id, "signaling")
    assert [c["id"] for c in kept] == [c["id"] for c in signaling] and kept[0]["closed_at"] is None, \
        "the signaling socket was kept"
    assert len(now) == len(old_sockets) + 1, "only the dropped media socket was redone"
    assert len(handshaken(stack, stream_id, kind)) == 2
    stream, _ = final_state(django_db_blocker, stream_id)
    assert stream.reconnects == 1, "Zoom's two words about one drop made one repair"
    sent, stored = audio_after_the_meeting(stack, django_db_blocker, meeting, stream_id)
    print(f"case 3 audio: {stored} of {sent} frames stored")
    assert stored <= sent and sent - stored <= 10


def authorize_host(stack, django_db_blocker, user_id):
    """The host installed the app: a real token pair from the simulator's OAuth server, stored as the app would."""
    from datetime import timedelta

    from django.utils import timezone

    from zoomapp.marketplace.models import UserAuthorization

    tokens = stack.oauth_tokens(user_id)
    with django_db_blocker.unblock():
        UserAuthorization.objects.update_or_create(app=stack.app, user_id=user_id, defaults={
            "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
            "expires_at": timezone.now() + timedelta(seconds=tokens["expires_in"])})


def test_case_4_an_error_stop_is_restarted_through_zoom_a_bounded_number_of_times(stack, django_db_blocker,
                                                                                  held_stream):
    from rtms.models import StreamSession
    from zoomapp.consent.actions.streams import MAX_RESTARTS
    from zoomapp.consent.models import AuditEntry, Share

    meeting, stream_id = held_stream
    host = next(p for p in meeting["participants"] if p["role"] == "host")
    authorize_host(stack, django_db_blocker, host["user_id"])
    say_and_check_transcript(stack, django_db_blocker, meeting, stream_id, ["Before the error"])

    streams = [stream_id]
    for restart in range(1, MAX_RESTARTS + 1):
        chaos(stack, streams[-1], case="error_stop", reason=13)  # SIGNAL_CONNECTION_INTERRUPTED

        def restarted():
            live = [s for s in stack.sim.get("/_sim/streams", params={"meeting": meeting["id"]}).json()
                    if s["id"] not in streams and s["state"] == "active"]
            return live and StreamSession.objects.filter(rtms_stream_id=live[0]["id"], state="active").exists() \
                and live[0]
        new = wait_for_row(django_db_blocker, restarted, f"restart {restart} to be held", timeout=20)
        stopped = stack.sim_stream(streams[-1])
        gap = (min(c["opened_at"] for c in stack.sim_stream(new["id"])["connections"]
                   if c["kind"] != "signaling" and c["handshake_status"] == 0) - stopped["stopped_at"]) / 1000
        print(f"\ncase 4 (stop reason 13), restart {restart}: {gap:.2f} s without a connection (a new stream)")
        assert new["operator_id"] == host["user_id"] and new["started_by"] == "app"
        streams.append(new["id"])

    say_and_check_transcript(stack, django_db_blocker, meeting, streams[-1], ["After the restarts"])
    chaos(stack, streams[-1], case="error_stop", reason=13)
    wait_for_row(django_db_blocker, lambda: AuditEntry.objects.filter(
        kind="stream_not_restarted", rtms_stream_id=streams[-1]).exists(), "the bound to be recorded")
    with django_db_blocker.unblock():
        restarts = list(AuditEntry.objects.filter(kind="stream_restart", app=stack.app,
                                                  meeting_uuid=meeting["uuid"]).order_by("id"))
        share = Share.objects.get(meeting__uuid=meeting["uuid"], meeting__app=stack.app, user_id=host["user_id"])
    assert [entry.rtms_stream_id for entry in restarts] == streams[:-1]
    assert all(entry.reason.startswith("SIGNAL_CONNECTION_INTERRUPTED (13)") for entry in restarts)
    assert share.status == "stopped" and share.stop_reason == 13
    live = [s for s in stack.sim.get("/_sim/streams", params={"meeting": meeting["id"]}).json()
            if s["state"] != "stopped"]
    assert live == [], "no fourth restart"


def test_case_1_a_holder_that_lost_its_lease_does_not_follow_the_move(stack, django_db_blocker, held_stream):
    import redis

    from rtms.models import StreamSession

    meeting, stream_id = held_stream
    before = final_state(django_db_blocker, stream_id)[0]
    # Another worker took the lease over (its value, its ttl) a moment before Zoom's server failed.
    lease = redis.Redis.from_url(stack.env["REDIS_URL"])
    lease.set(f"{stack.namespace}:rtms:lease:{stream_id}", "worker-elsewhere:0", px=1500)
    played = chaos(stack, stream_id, case="server_failover")

    moved = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="active", lease_generation__gt=before.lease_generation,
        server_urls__startswith=played["to"]).first(), "the stream claimed again on the new server", timeout=20)
    assert "lease lost, sockets closed" in stack.workers[0].log_text()
    signaling = handshaken(stack, stream_id, "signaling")
    assert overlapping_live_connections(signaling) == []
    assert [c["server"] for c in signaling].count(played["to"]) == 1, "one connection to the new server"
    say_and_check_transcript(stack, django_db_blocker, meeting, stream_id, ["After the fenced move"])
    assert moved.owner_worker


def test_chaos_mode_on_three_held_streams(stack, django_db_blocker):
    """Zoom's sample's chaos mode: a random case on a random stream every 0.4 s for a while; afterwards every
    stream is held, on one signaling connection at a time, and stores what is said once."""
    import time

    from rtms.models import StreamSession

    meetings = [stack.start_meeting(f"Chaos {n}") for n in range(3)]
    streams = [stack.start_stream(meeting) for meeting in meetings]
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id__in=streams, state="active").count() == 3, "three streams held", timeout=30)
    earlier = len(stack.sim.get("/_sim/chaos").json()["played"])
    started = stack.sim.post("/_sim/chaos", json={
        "interval_s": 0.4, "cases": ["server_failover", "signaling_drop", "media_drop"]})
    assert started.status_code == 201, started.text
    try:
        time.sleep(6)
    finally:
        played = stack.sim.delete("/_sim/chaos").json()["played"][earlier:]
    print(f"\nchaos mode: {len(played)} cases played on 3 streams in 6 s: "
          f"{ {case: sum(p['case'] == case for p in played) for case in sorted({p['case'] for p in played})} }")
    assert len(played) >= 8
    try:
        wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
            rtms_stream_id__in=streams, state="active").count() == 3
            and all(stack.sim_stream(s)["state"] == "active" for s in streams), "every stream held again")
        for meeting, stream_id in zip(meetings, streams):
            say_and_check_transcript(stack, django_db_blocker, meeting, stream_id, [f"After the chaos {stream_id[:6]}"])
            assert overlapping_live_connections(handshaken(stack, stream_id, "signaling")) == []
    finally:
        for meeting in meetings:
            stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")
