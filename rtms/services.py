"""Every change to a stream goes through here: the row, its audit trail, then (after commit) the signals, the
live push and the work for the workers. Views, tasks and the session host all call these, so no path forgets
the push. Synchronous (the host calls them through `sync_to_async`), short transactions.
"""

import logging

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from redis.exceptions import RedisError

from rtms import holder_messages, leases, metrics, placement, signals
from rtms.client.protocol import StopReason, stop_reason_name
from rtms.compiled_read import CompiledModelRead, CompiledRead
from rtms.models import DesiredState, StreamFailure, StreamSession, StreamState, StreamTransition

log = logging.getLogger("rtms.services")

TEXT_EXPORT_DELAY = 10  # seconds after a stream stopped

# On every webhook's and every state change's path, compiled once (rtms/compiled_read.py).
_LOCKED_STREAM = CompiledModelRead(
    lambda stream_id: StreamSession.objects.select_for_update().filter(rtms_stream_id=stream_id), "stream id stand-in")
_STREAM_APP = CompiledRead(
    lambda stream_id: StreamSession.objects.filter(rtms_stream_id=stream_id).values_list("client_id"),
    "stream id stand-in")


def _queue(task_name, rtms_stream_id, countdown=None):
    """Work for the workers, queued by task name (rtms/tasks.py): the domain layer never imports the Celery module.
    Nothing reads these tasks' results: without `ignore_result` the sender subscribes to each task's result channel
    in Redis (Celery's result backend) and unsubscribes once the result object is dropped, two round trips inside
    the webhook's request for nothing (seen with py-spy in daphne, bench/approval_latency.py)."""
    current_app.send_task(task_name, args=(rtms_stream_id,), countdown=countdown, ignore_result=True)


def enqueue_claim(stream_id):
    """Place the stream on the least loaded worker process with room (rtms/placement.py); when none has room
    or Redis is unreachable, the reconciler places it again."""
    placement.place(stream_id)


def _announce(stream, previous, reason):
    signals.stream_state_changed.send_robust(sender=StreamSession, stream=stream, previous=previous, reason=reason)


class StreamOfAnotherApp(Exception):
    """A webhook of one app named a stream id that belongs to another app: refused, nothing changes
    (docs/SECURITY.md)."""


def check_stream_app(rtms_stream_id, client_id):
    """Raise StreamOfAnotherApp when the stream exists and is not `client_id`'s; an unknown id passes."""
    found = _STREAM_APP.one(rtms_stream_id)
    if found is not None and found[0] != client_id:
        raise StreamOfAnotherApp(f"rtms_stream_id {rtms_stream_id} belongs to another app; nothing changed")


@transaction.atomic
def change_state(stream_id, state, reason="", stop_reason=None, worker="", session_id=None, failure=""):
    """Move a stream to `state` (no-op when already there, and a stopped stream stays stopped).
    `failure` (a StreamFailure, with STOPPED) names why we ended it ourselves.
    Returns the stream, or None when it is unknown; the stream's `state_before` is the state it had (its state
    still, when nothing changed)."""
    stream = _LOCKED_STREAM.one(stream_id)
    if stream is None:
        return None
    previous = stream.state_before = stream.state
    # Connected (a holder reports active or paused): claims are counted afresh, saved with the new state (an
    # update of its own only when unchanged: a paused stream handed over stays paused, rtms/host.py).
    reset_claims = state in _HOLDER_REPORTS and stream.connect_claims
    if reset_claims:
        stream.connect_claims = 0
    if previous == StreamState.STOPPED or (previous == state and session_id in (None, stream.rtms_session_id)):
        if reset_claims:
            StreamSession.objects.filter(pk=stream.pk).update(connect_claims=0)
        return stream
    now = timezone.now()
    stream.state = state
    stream.version += 1
    if session_id:
        stream.rtms_session_id = session_id
    if state == StreamState.ACTIVE and stream.started_at is None:
        stream.started_at = now
    if state == StreamState.STOPPED:
        stream.desired_state = DesiredState.STOPPED
        stream.stopped_at = now
        stream.stop_reason = stop_reason
        stream.stop_reason_name = failure or stop_reason_name(stop_reason)
    stream.save()
    StreamTransition.objects.create(
        stream=stream, previous=previous, state=state, reason=reason[:200], stop_reason=stop_reason, worker=worker
    )
    log.info(
        "stream state changed",
        extra={"stream": stream_id, "meeting": stream.meeting_uuid, "previous": previous, "state": state,
               "reason": reason, "stop_reason": stream.stop_reason_name or None},
    )
    transaction.on_commit(lambda: _announce(stream, previous, reason))
    return stream


def _over_stream_limit(client_id, account_id):
    """The StreamFailure when the app or the account already has its limit of streams not stopped, else ''.
    Counted at each start, both in one query: starts arriving in the same instant may pass it by the few in
    flight."""
    mine = Q(client_id=client_id) | Q(account_id=account_id) if account_id else Q(client_id=client_id)
    counts = StreamSession.objects.exclude(state=StreamState.STOPPED).filter(mine).aggregate(
        app=Count("pk", filter=Q(client_id=client_id)), account=Count("pk", filter=Q(account_id=account_id)))
    if counts["app"] >= settings.RTMS_MAX_STREAMS_PER_APP:
        return StreamFailure.APP_STREAM_LIMIT
    if account_id and counts["account"] >= settings.RTMS_MAX_STREAMS_PER_ACCOUNT:
        return StreamFailure.ACCOUNT_STREAM_LIMIT
    return ""


# No savepoint of its own: the webhook's transaction is rolled back whole when this raises (every round trip on
# this path delays the claim, docs/ARCHITECTURE.md "Holding RTMS streams").
@transaction.atomic(savepoint=False)
def stream_started(client_id, meeting_uuid, rtms_stream_id, server_urls, operator_id="", account_id=""):
    """`meeting.rtms_started`: upsert (Zoom retries deliveries), want it running, and after commit ask a worker
    to claim it. A retry for a stream that already stopped changes nothing; a stream id of another app raises
    StreamOfAnotherApp; over the app's or the account's stream limit the stream is recorded stopped with the
    limit as its reason and never claimed."""
    stream = _LOCKED_STREAM.one(rtms_stream_id)
    created = stream is None
    if created:
        stream, created = _create_stream(client_id, meeting_uuid, rtms_stream_id, server_urls, operator_id,
                                         account_id)
    if stream.client_id != client_id:
        raise StreamOfAnotherApp(f"rtms_stream_id {rtms_stream_id} belongs to another app; nothing changed")
    if created and stream.state == StreamState.STOPPED:
        failure = stream.stop_reason_name
        StreamTransition.objects.create(stream=stream, previous="", state=StreamState.STOPPED,
                                        reason=StreamFailure(failure).label)
        metrics.streams_refused.labels(reason=failure).inc()
        log.warning("stream refused: over the stream limit", extra={
            "stream": rtms_stream_id, "meeting": meeting_uuid, "client_id": client_id, "account_id": account_id,
            "failure": failure})
        transaction.on_commit(lambda: _announce(stream, "", failure))
        return stream
    if stream.state == StreamState.STOPPED:
        if not stream.server_urls:
            # Recorded by Zoom's stop, which came first (stream_stopped): this start names who started it, so the
            # stop is announced again for that person's share to take Zoom's reason. Never claimed.
            stream.meeting_uuid = stream.meeting_uuid or meeting_uuid
            stream.server_urls, stream.operator_id = server_urls, operator_id or ""
            stream.account_id = stream.account_id or account_id or ""
            stream.save(update_fields=["meeting_uuid", "server_urls", "operator_id", "account_id", "updated"])
            transaction.on_commit(lambda: _announce(stream, StreamState.STOPPED, "rtms_started after its stop"))
        return stream
    # The claim is queued before the state is announced: the panels' update (a transaction and a full state read)
    # must not hold up the worker's handshake; consent maps announcements that arrive late by the stream's
    # current state (zoomapp/consent/actions/streams.py).
    transaction.on_commit(lambda: enqueue_claim(rtms_stream_id))
    if created:
        StreamTransition.objects.create(stream=stream, previous="", state=StreamState.STARTING, reason="rtms_started")
        transaction.on_commit(lambda: _announce(stream, "", "rtms_started"))
    elif server_urls and stream.server_urls != server_urls:
        # Zoom's RTMS server failed (docs/STREAMS.md, case 1): the holder moves at once; an identical re-send is
        # only Zoom's retry and changes nothing.
        stream.server_urls = server_urls
        stream.save(update_fields=["server_urls", "updated"])
        log.info("stream moved to a new rtms server", extra={"stream": rtms_stream_id, "meeting": meeting_uuid})
        transaction.on_commit(lambda: holder_messages.send_move(rtms_stream_id, server_urls))
    return stream


def _create_stream(client_id, meeting_uuid, rtms_stream_id, server_urls, operator_id, account_id):
    """A new stream row (stopped at once when over a stream limit); returns (stream, created). A delivery of the
    same stream committed meanwhile wins: its row is returned, locked."""
    failure = _over_stream_limit(client_id, account_id)
    stopped = {"state": StreamState.STOPPED, "desired_state": DesiredState.STOPPED, "stopped_at": timezone.now(),
               "stop_reason_name": failure} if failure else {}
    try:
        with transaction.atomic():
            return StreamSession.objects.create(
                rtms_stream_id=rtms_stream_id, meeting_uuid=meeting_uuid, client_id=client_id,
                server_urls=server_urls, operator_id=operator_id or "", account_id=account_id or "", **stopped,
            ), True
    except IntegrityError:
        return StreamSession.objects.select_for_update().get(rtms_stream_id=rtms_stream_id), False


def stream_failed(rtms_stream_id, failure, detail, worker=""):
    """We end a stream that cannot be held (a StreamFailure): stopped, not re-claimed, the holder told to stop and
    what it received exported (Zoom's own stop report, which follows, then changes nothing)."""
    stream = change_state(rtms_stream_id, StreamState.STOPPED, reason=detail[:200], worker=worker, failure=failure)
    if stream is not None and stream.state_before != StreamState.STOPPED:
        metrics.streams_refused.labels(reason=failure).inc()
        log.warning("stream failed", extra={"stream": rtms_stream_id, "meeting": stream.meeting_uuid,
                                            "failure": failure, "detail": detail})
        _after_stop(rtms_stream_id)
    return stream


# The states a connected holder reports itself (rtms/host.py): an interruption of such a stream is the holder's.
_HOLDER_REPORTS = (StreamState.ACTIVE, StreamState.PAUSED)


@transaction.atomic
def stream_interrupted(rtms_stream_id):
    """`meeting.rtms_interrupted`: Zoom saw the signaling socket break and waits 60 s for a reconnect
    (docs/STREAMS.md, case 2). An active or paused stream with a holder is left to the holder, which is told and
    reports its own state (it has usually reconnected already: Zoom's word must not mark a reconnected stream
    interrupted, nor take a paused one out of its pause); any other stream is marked interrupted and the claim
    makes a worker take it. The row is locked while deciding, so the holder's own report cannot land in between."""
    stream = _LOCKED_STREAM.one(rtms_stream_id)
    if stream is None:
        return None
    try:
        held = stream.state in _HOLDER_REPORTS and leases.holders([rtms_stream_id]).get(rtms_stream_id)
    except RedisError as exc:  # the holder cannot be told: Zoom's word is recorded as it stands
        log.warning("lease not readable, stream marked interrupted", extra={"stream": rtms_stream_id,
                                                                           "error": repr(exc)})
        held = None
    if held:
        transaction.on_commit(lambda: holder_messages.send_interrupted(rtms_stream_id))
        return stream
    stream = change_state(rtms_stream_id, StreamState.INTERRUPTED, reason="rtms_interrupted")
    if stream.desired_state == DesiredState.RUNNING:
        transaction.on_commit(lambda: enqueue_claim(rtms_stream_id))
    return stream


def stream_stopped(rtms_stream_id, stop_reason, reason="rtms_stopped", worker="", client_id="", meeting_uuid=""):
    """Zoom stopped the stream (webhook or the signaling socket said so). STREAM_REVOKED deletes its media.
    A stream we have no row for yet is recorded stopped when its app is named (`client_id`): Zoom retries a start
    answered late minutes after, so its stop can come first (docs/STREAMS.md "Deliveries out of order")."""
    stream = change_state(rtms_stream_id, StreamState.STOPPED, reason=reason, stop_reason=stop_reason, worker=worker)
    if stream is None:
        return _stopped_before_started(client_id, meeting_uuid, rtms_stream_id, stop_reason, reason) if client_id \
            else None
    if stop_reason == StopReason.STREAM_REVOKED:
        # Whichever report recorded the stop, a revocation deletes what was stored (an export queued by the first
        # report finds the stream's media deleted and writes nothing).
        transaction.on_commit(lambda: holder_messages.send_stop(rtms_stream_id))
        transaction.on_commit(lambda: _queue("rtms.delete_stream_media", rtms_stream_id))
    elif stream.state_before != StreamState.STOPPED:
        # Zoom reports a stop twice, by webhook and on the holder's signaling socket: the first one stopped it.
        _after_stop(rtms_stream_id)
    return stream


@transaction.atomic
def _stopped_before_started(client_id, meeting_uuid, rtms_stream_id, stop_reason, reason):
    """A stopped row with Zoom's reason and no server: the start that follows finds it stopped, is never claimed
    and only names its operator (stream_started). Nothing was held or stored, so nothing is told or exported."""
    try:
        with transaction.atomic():
            stream = StreamSession.objects.create(
                rtms_stream_id=rtms_stream_id, meeting_uuid=meeting_uuid or "", client_id=client_id,
                state=StreamState.STOPPED, desired_state=DesiredState.STOPPED, stopped_at=timezone.now(),
                stop_reason=stop_reason, stop_reason_name=stop_reason_name(stop_reason))
    except IntegrityError:  # its start committed meanwhile: stopped as any other
        return stream_stopped(rtms_stream_id, stop_reason, reason)
    stream.state_before = ""
    StreamTransition.objects.create(stream=stream, previous="", state=StreamState.STOPPED, reason=reason[:200],
                                    stop_reason=stop_reason)
    log.info("stream stopped before it started", extra={
        "stream": rtms_stream_id, "meeting": meeting_uuid, "client_id": client_id,
        "stop_reason": stream.stop_reason_name or None})
    transaction.on_commit(lambda: _announce(stream, "", reason))
    return stream


def _after_stop(rtms_stream_id):
    """After the commit that stopped the stream: its holder is told, and its transcript and chat are exported
    once the holder's last rows are committed (they follow within a tick or two)."""
    transaction.on_commit(lambda: holder_messages.send_stop(rtms_stream_id))
    transaction.on_commit(lambda: _queue("rtms.export_stream_text", rtms_stream_id, countdown=TEXT_EXPORT_DELAY))


@transaction.atomic
def request_stop(rtms_stream_id, reason="stop requested"):
    """Our side ends the stream (operator, or the app): the holder sends STREAM_CLOSE_REQ, then Zoom stops it
    with RECEIVER_REQUEST_CLOSE and the holder records that."""
    updated = StreamSession.objects.filter(rtms_stream_id=rtms_stream_id).update(
        desired_state=DesiredState.STOPPED, updated=timezone.now()
    )
    if updated:
        log.info("stream stop requested", extra={"stream": rtms_stream_id, "reason": reason})
        transaction.on_commit(lambda: holder_messages.send_stop(rtms_stream_id))
    return bool(updated)


def count_reconnect(rtms_stream_id):
    StreamSession.objects.filter(rtms_stream_id=rtms_stream_id).update(reconnects=F("reconnects") + 1)
