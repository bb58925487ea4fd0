"""The session host: one event loop (uvloop by default) per Celery worker process (in a thread started from
`worker_process_init`) holding many RTMS streams through rtms.client (docs/ARCHITECTURE.md, "Holding RTMS streams").

- Placement (rtms/placement.py) pushes a stream onto this process's inbox; the claim thread wins its lease
  (only while under RTMS_STREAMS_PER_PROCESS) and hands it to the loop, which runs the stream as an asyncio
  task; the renewal thread renews the lease every ttl/3 and publishes this process's load. A renewal that
  finds another holder, or that cannot reach Redis before the lease runs out, aborts the stream's sockets at
  once (fencing). A stream that ended keeps its lease until its row says stopped, so it is never claimed again.
- Stop is an application message on the Redis control channel (rtms/holder_messages.py); the holder sends
  STREAM_CLOSE_REQ and records Zoom's stop reason. Zoom's own failures arrive the same way (docs/STREAMS.md):
  "move" (a re-sent rtms_started naming a new RTMS server) and "interrupted" (rtms_interrupted).
- On SIGTERM (`worker_process_shutdown` in the pool process) the host leaves placement first (no claim
  reaches it any more), then drops its sockets without ending the streams, flushes, releases its leases and
  places every stream again, so other processes take them over inside Zoom's 60 s reconnection window.
- Database work goes through two threads (rows; states in order, batched), short transactions, each on its own
  long-lived connection; files through a third. Once per tick the loop hands what its streams received to the
  file thread, which writes it while the loop waits, and the row thread commits the new rows. The tick follows
  the process's load (rtms/client/pacing.py): one audio frame (20 ms) and sockets read as data arrives while the
  process is lightly loaded, up to 80 ms with the sockets polled once per tick when it is busy (never while a
  stream is handshaking); near saturation each stream's media is written every other tick (docs/STREAMS.md).
"""

import asyncio
import concurrent.futures
import json
import logging
import os
import random
import socket
import threading
import time

import redis
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from rtms import credentials, leases, log_context, metrics, outbound, placement, services, sinks, spool, stats
from rtms.client import MediaType, Outcome, Phase, StopReason, StreamClient, Timings
from rtms.client.pacing import TICK, Pacer, quiet_garbage_collector
from rtms.client.protocol import SessionState, Status, StreamState
from rtms.holder_messages import control_channel
from rtms.identifiers import InvalidIdentifier, validate
from rtms.models import DesiredState, StreamFailure, StreamSession, StreamTransition
from rtms.models import StreamState as State
from rtms.storage import StorageError, storage

log = logging.getLogger("rtms.host")

MEDIA = MediaType.AUDIO | MediaType.VIDEO | MediaType.DESKSHARE | MediaType.TRANSCRIPT | MediaType.CHAT
UPLOAD_THREADS = 8
CLAIM_BATCH = 50  # streams claimed together from the inbox
INDEX_SLICES = 10  # the held streams' media index is synced a tenth at a time, every INDEX_INTERVAL / 10
SPOOL_RECOVERY_INTERVAL = 5.0  # seconds between looks for the spool of a dead process of this node
BUSY_ROWS_PERIOD = 0.25  # seconds between two commits of rows while the pacer batches (light load: every tick)
# Handshake refusals that no retry can fix: the stream is over for us.
FATAL_STATUSES = {Status.INVALID_RTMS_STREAM_ID, Status.INVALID_SIGNATURE}

_host = None


def start_host(worker_id=None, node=""):
    """`node`: the Celery worker's host name, whose SIGTERM drains this host (rtms.holder_messages.send_drain).
    A host that cannot start (its spool not writable or locked, its loop not running) ends the pool process:
    Celery starts another in its place, where a process without its host looked healthy while holding nothing."""
    global _host
    if _host is None:
        worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        try:
            _host = SessionHost(worker_id, node)
            _host.start()
        except Exception:
            log.critical("session host not started, pool process exits", exc_info=True,
                         extra={"worker": worker_id, "spool": str(settings.RTMS_SPOOL_DIR)})
            raise SystemExit(1) from None
    return _host


def stop_host():
    global _host
    if _host is not None:
        _host.shutdown()
        _host = None


def _db(fn, *args, **kwargs):
    """Run on one of the host's database threads, on that thread's own long-lived connection: Django's
    per-request connection (CONN_MAX_AGE 0) would cost a new PostgreSQL backend for every state change and
    every batch. A connection that failed (PostgreSQL restarted) is closed, so the caller's retry reconnects."""
    try:
        return fn(*args, **kwargs)
    except (OperationalError, InterfaceError):
        connection.close()
        raise


def close_thread_connections(pool, threads):
    """Each of the pool's `threads` closes its database connection, once the work queued before is done: the
    threads keep theirs for good (`_db`; an upload's look for an erasure), and a host that stopped gives them back
    (to the pool of a process that has one). A barrier puts each close on a thread of its own."""
    barrier = threading.Barrier(threads)

    def close():
        try:
            barrier.wait(10)
        except threading.BrokenBarrierError:  # a thread still busy: the others close theirs anyway
            pass
        connection.close()

    concurrent.futures.wait([pool.submit(close) for _ in range(threads)], timeout=15)


def new_event_loop(kind):
    """The loop that holds the streams: uvloop when asked and installed, else asyncio's own."""
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop is not installed, holding streams on asyncio's loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _write_media(work, held_files, uploader):
    """File thread: append what each stream received; for `held_files` (a slice of the held streams, each in
    turn once per INDEX_INTERVAL) also sync the headers, close the segments RTMS_SEGMENT_SECONDS old (uploaded
    on `uploader`), and return their media index."""
    failed = []
    for files, audio, frames in work:
        try:
            sinks.write_media(files, audio, frames)
        except OSError as exc:  # that stream's media of this tick is lost; the other streams' is written
            failed.append((files.stream_id, exc))
    index = []
    for files in held_files:
        try:
            if files.segment_due(settings.RTMS_SEGMENT_SECONDS):
                files.roll(uploader=uploader)
            else:
                files.sync()
        except OSError as exc:
            failed.append((files.stream_id, exc))
            continue
        index.append((files, list(files.index_rows())))
    if failed:
        _media_not_stored(failed)
    return index


_MEDIA_FAILURE_LOG_SECONDS = 10.0
_media_failure_logged_at = [float("-inf")]  # file thread only


def _media_not_stored(failed):
    """Counted every time, logged once every _MEDIA_FAILURE_LOG_SECONDS at most: a full disk fails every stream's
    write of every tick."""
    metrics.media_write_failures.inc(len(failed))
    now = time.monotonic()
    if now - _media_failure_logged_at[0] >= _MEDIA_FAILURE_LOG_SECONDS:
        _media_failure_logged_at[0] = now
        stream_id, exc = failed[0]
        log.error("media not stored", extra={"stream": stream_id, "streams": len(failed), "error": repr(exc)})


def _forget_stale_figures(client):
    """At the fleet's sweep (rtms/placement.py, HEARTBEAT): the live figures nobody published for STALE_SECONDS
    go. Read, they are skipped (rtms/stats.py), but those of every stream whose holder died stayed in the hash."""
    cutoff = time.time() - stats.STALE_SECONDS
    try:
        stale = [stream for stream, figures in client.hscan_iter(stats.stats_key(), count=1000)
                 if json.loads(figures).get("at", 0) < cutoff]
        if stale:
            client.hdel(stats.stats_key(), *stale)
            log.info("stale live figures removed", extra={"streams": len(stale)})
    except redis.RedisError as exc:  # the next sweep removes them
        log.warning("stale live figures not removed", extra={"error": repr(exc)})


def _apply_in_order(changes):
    """State thread: run queued (fn, args, kwargs) changes in order. Returns how many ran and the database
    error that stopped the rest (None when all ran); a change that fails for another reason is logged and
    skipped, as no retry would fix it."""
    for done, (fn, args, kwargs) in enumerate(changes):
        try:
            _db(fn, *args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            return done, exc
        except Exception:
            log.exception("state change failed", extra={"change": getattr(fn, "__name__", "")})
    return len(changes), None


def _waited_for(state_change):
    """Whether something waits on this change of the state queue: every one but a write of the media index (a
    panel's "Sharing", a stop, a stream's end wait on theirs)."""
    return state_change is not sinks.write_index


def _resolve(future):
    if not future.done():
        future.set_result(None)


class HeldStream:
    # Slots here and on the sinks' per-stream objects: a worker holds a thousand of each (≤ 64 KiB per stream).
    __slots__ = ("stream_id", "stream_pk", "meeting_uuid", "client_id", "server_urls", "per_participant",
                 "lease_value", "client", "store", "files", "task", "lease_lost", "handing_over", "rate_base",
                 "lease_valid_until", "closing", "write_phase", "paused")

    def __init__(self, stream, lease_value, spool, node, write_phase=0, failed_uploads=None):
        self.stream_id = stream.rtms_stream_id
        self.stream_pk = stream.pk
        self.meeting_uuid = stream.meeting_uuid
        self.client_id = stream.client_id
        self.server_urls = stream.server_urls
        self.per_participant = stream.audio_per_participant
        self.lease_value = lease_value
        self.client = None
        self.store = None
        # Segments roll at a random point of the first RTMS_SEGMENT_SECONDS: 1,400 streams rolling in the same
        # tick copied 1,400 segments at once (0.26 core and p99 lag 1 s at that moment, bench/streams_hold.py).
        self.files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, stream.lease_generation, spool, node,
                                       stagger=random.uniform(0, settings.RTMS_SEGMENT_SECONDS),
                                       failed_uploads=failed_uploads)
        self.task = None
        self.lease_lost = False
        self.handing_over = False
        self.rate_base = (time.monotonic(), 0, 0)  # (when, frames, bytes) at the last stats publish
        self.lease_valid_until = time.monotonic() + settings.RTMS_LEASE_TTL
        self.closing = False
        self.write_phase = write_phase  # near saturation, which of two alternate ticks writes this stream's media
        # Zoom's last word was PAUSED (a reconnect does not end a pause, nor a handover: a stream claimed paused,
        # or interrupted while paused, is paused until Zoom says otherwise after the ready, docs/STREAMS.md
        # "Paused streams"; `interrupted_from` is read by the claim)
        self.paused = stream.state == State.PAUSED or (
            stream.state == State.INTERRUPTED and getattr(stream, "interrupted_from", None) == State.PAUSED)


def _checked_session_id(held):
    """The RTMS session id Zoom's signaling named, if it is well-formed (it is stored); else None, logged."""
    session_id = held.client.session_id if held.client else None
    try:
        return validate("rtms_session_id", session_id) if session_id is not None else None
    except InvalidIdentifier as exc:
        log.warning("rtms session id ignored", extra={"error": str(exc)})
        return None


class SessionHost:
    def __init__(self, worker_id, node=""):
        self.worker_id = worker_id
        self.node = node
        self._shutdown_lock = threading.Lock()
        self._drained = threading.Event()
        self.loop = new_event_loop(settings.RTMS_EVENT_LOOP)
        self.streams = {}
        self.accepting = False
        self.retired = {}  # counters of streams no longer held, for the metrics totals
        # Two database threads: stream states (slower: signal receivers run there) never hold up stored rows.
        self._db_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rtms-db-rows")
        self._state_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rtms-db-states")
        self._file_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rtms-files")
        # Segments go to storage from their own threads: an upload never holds up the audio written each tick.
        self._upload_pool = concurrent.futures.ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="rtms-uploads")
        self._pending_rows = []
        self._rows_writer = asyncio.Lock()  # `_store_pending_rows`: the periodic flush and the handover's last write
        self._connecting = set()  # ids of held streams handshaking or reconnecting: the loop must not wait then
        # Polls the sockets once per tick (rtms/client/pacing.py) only when the load makes it pay, and while no
        # stream is handshaking and no state change waits to be stored: a stop message, a handshake or "Sharing"
        # on the panels must not wait out a tick. A queued write of the media index does not count: nothing
        # waits on it (docs/STREAMS.md, "How often the holder reads and stores").
        self._states_queued = 0  # state changes queued and not yet taken by the state thread, index writes aside
        self._pacer = Pacer(self.loop, TICK, self._hand_media_to_files,
                            lambda: not self._connecting and not self._states_queued)
        self._last_index_sync = time.monotonic()
        self._index_slice = 0  # which slice of the held streams has its index synced next
        self._ticks = 0
        self._streams_held = 0  # streams ever held by this process: alternates their write phase
        self._secrets = {}
        self._state_queue = None
        self._leases = None
        self._thread = None
        self._stopping = threading.Event()
        self.capacity = settings.RTMS_STREAMS_PER_PROCESS
        self.spool, self._spool_lock = spool.open_process_spool(settings.RTMS_SPOOL_DIR)
        self.failed_uploads = sinks.FailedUploads()
        self._adopting = 0  # popped from the inbox, not yet held: counted in the published load
        self.timings = Timings().scaled(settings.RTMS_RECONNECT_SCALE)
        self.allowed_hosts = outbound.allowed_hosts()

    # Called from other threads --------------------------------------------------------------------------------

    def start(self):
        quiet_garbage_collector()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run_loop, args=(ready,), name="rtms-session-host", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the session host's event loop did not start")
        self._say_alive(redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2))
        threading.Thread(target=self._renew_leases, name="rtms-lease-renewal", daemon=True).start()
        metrics.register_host_collector(self._counter_snapshots)
        self._serve_metrics()
        self.accepting = True
        threading.Thread(target=self._take_placed_streams, name="rtms-claims", daemon=True).start()
        threading.Thread(target=self._recover_spool, name="rtms-spool-recovery", daemon=True).start()
        log.info("session host started", extra={"worker": self.worker_id})

    def _recover_spool(self):
        """Spool thread, at start and every SPOOL_RECOVERY_INTERVAL after: what processes that died (kill -9, out
        of memory) left in their spool goes to storage (rtms/spool.py), and so do this process's own segments that
        failed to upload, once their backoff allows (sinks.FailedUploads)."""
        while True:
            try:
                _db(sinks.recover_spool, settings.RTMS_SPOOL_DIR, self.worker_id)
                uploaded = _db(self.failed_uploads.retry)
                if uploaded:
                    self.loop.call_soon_threadsafe(self._index_uploaded_again, uploaded)
            except Exception:
                log.exception("spool not recovered yet, retrying")
            finally:
                connection.close()
            if self._stopping.wait(SPOOL_RECOVERY_INTERVAL):
                return

    def holds(self, stream_id):
        return stream_id in self.streams

    def _take_placed_streams(self):
        """Claim thread: claim the streams placement pushed onto this process's inbox (rtms/placement.py), up to
        CLAIM_BATCH at a time (a takeover brings hundreds at once), while it accepts streams."""
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
        inbox = placement.inbox_key(self.worker_id)
        while self.accepting:
            try:
                popped = client.blpop([inbox], timeout=1)
                more = client.lpop(inbox, CLAIM_BATCH - 1) if popped else None
            except redis.RedisError as exc:
                log.warning("inbox not readable, retrying", extra={"error": repr(exc)})
                self._stopping.wait(0.5)
                continue
            if popped is None:
                continue
            stream_ids = list(dict.fromkeys(s.decode() for s in [popped[1], *(more or [])]))
            self._adopting += len(stream_ids)
            try:
                outcomes = _db(self._claim, stream_ids)
            except Exception:
                log.exception("claims failed", extra={"streams": len(stream_ids)})
                outcomes = dict.fromkeys(stream_ids, "error")
            finally:
                self._adopting -= len(stream_ids)
            for stream_id, outcome in outcomes.items():
                if outcome != "claimed":
                    placement.forget(stream_id, client)
                    log.info("claim not taken", extra={"stream": stream_id, "outcome": outcome,
                                                       "worker": self.worker_id})

    def _claim(self, stream_ids):
        """Win the streams' leases and hold them, each unless this process is full or leaving, the stream should
        not run, or another process holds it; returns {stream_id: outcome}. A stream claimed
        RTMS_MAX_CONNECT_CLAIMS times without connecting once ends FAILED_NOT_CONNECTED instead (the reconciler
        would re-claim it forever). A few statements for the whole batch, however many streams."""
        outcomes = {}
        room = self.capacity - len(self.streams)
        rows = {s.rtms_stream_id: s for s in StreamSession.objects.filter(rtms_stream_id__in=stream_ids)}
        wanted = []
        for stream_id in stream_ids:
            stream = rows.get(stream_id)
            if not self.accepting:
                outcomes[stream_id] = "not_accepting"
            elif stream_id in self.streams:
                outcomes[stream_id] = "already_held"
            elif stream is None or stream.desired_state != DesiredState.RUNNING or stream.state == State.STOPPED:
                outcomes[stream_id] = "not_running"
            elif len(wanted) >= room:
                outcomes[stream_id] = "full"
            else:
                wanted.append(stream_id)
        values = {s: leases.new_lease_value(self.worker_id) for s in wanted}
        won = [s for s, taken in zip(wanted, leases.try_acquire_many(values)) if taken]
        outcomes.update((s, "held_elsewhere") for s in wanted if s not in won)
        for stream_id in [s for s in won if rows[s].connect_claims >= settings.RTMS_MAX_CONNECT_CLAIMS]:
            services.stream_failed(stream_id, StreamFailure.NOT_CONNECTED,
                                   f"not connected after {rows[stream_id].connect_claims} claims",
                                   worker=self.worker_id)
            leases.release(stream_id, values[stream_id])  # after the row says stopped: never re-claimed
            outcomes[stream_id] = "failed"
            won.remove(stream_id)
        if not won:
            return outcomes
        try:
            with transaction.atomic():
                # Their rows locked in id order first, as the holders' writes lock theirs (sinks._lock_unerased):
                # the UPDATE alone locks them in the order it finds them, and deadlocked with the previous holder
                # still writing the same streams' rows during a handover.
                locked = list(StreamSession.objects.filter(rtms_stream_id__in=won).order_by("pk")
                              .select_for_update(no_key=True).values_list("pk", flat=True))
                StreamSession.objects.filter(pk__in=locked).update(
                    lease_generation=F("lease_generation") + 1, connect_claims=F("connect_claims") + 1,
                    owner_worker=self.worker_id, updated=timezone.now())
            # What an interrupted stream was before (the state its last transition left): a pause outlives it.
            claimed = list(StreamSession.objects.filter(rtms_stream_id__in=won).annotate(interrupted_from=Subquery(
                StreamTransition.objects.filter(stream=OuterRef("pk")).order_by("-pk").values("previous")[:1])))
            self.hand([(stream, values[stream.rtms_stream_id]) for stream in claimed])
        except Exception:
            for stream_id in won:
                leases.release(stream_id, values[stream_id])
            raise
        for stream in claimed:
            outcomes[stream.rtms_stream_id] = "claimed"
            log.info("stream claimed", extra={"stream": stream.rtms_stream_id, "meeting": stream.meeting_uuid,
                                              "worker": self.worker_id, "generation": stream.lease_generation})
        return outcomes

    def hand(self, claimed):
        """From the claim thread: start holding each (stream, lease value) of `claimed` (its lease already won)."""
        if not self.accepting:
            raise RuntimeError("session host is shutting down")
        adopted = asyncio.run_coroutine_threadsafe(self._adopt_all(claimed), self.loop)
        self._pacer.wake()
        adopted.result(10)

    def shutdown(self, timeout=30.0):
        """SIGTERM: hand every stream over (sockets dropped, leases released, placed again). Called by the drain
        message and by Celery's process shutdown: the second caller waits for the first to finish."""
        if not self._shutdown_lock.acquire(blocking=False):
            self._drained.wait(timeout)
            return
        self.accepting = False  # no claim is taken from here on, then every held stream goes to the others
        try:
            returned = placement.leave(self.worker_id)
        except redis.RedisError as exc:  # its heartbeat goes stale within a lease ttl: placement skips it
            log.warning("not taken out of placement", extra={"error": repr(exc)})
            returned = []
        if returned:
            placement.place_many(returned)
        try:
            asyncio.run_coroutine_threadsafe(self._hand_over_all(), self.loop).result(timeout)
        except Exception as exc:  # noqa: BLE001 - exiting anyway; leases expire and the reconciler re-claims
            log.warning("handover incomplete", extra={"error": repr(exc)})
        self._stopping.set()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._pacer.wake()
        for pool, threads in ((self._db_pool, 1), (self._state_pool, 1), (self._upload_pool, UPLOAD_THREADS)):
            close_thread_connections(pool, threads)
        self._drained.set()

    # The loop -------------------------------------------------------------------------------------------------

    def _run_loop(self, ready):
        asyncio.set_event_loop(self.loop)
        self._state_queue = asyncio.Queue()
        self._leases = leases.AsyncLeases(settings.REDIS_URL)
        for job in (self._listen_for_control(), self._flush_rows(), self._apply_states()):
            self.loop.create_task(job)
        self._pacer.start()
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    async def _adopt_all(self, claimed):
        for stream, lease_value in claimed:
            if stream.rtms_stream_id in self.streams:
                await self._leases.release(stream.rtms_stream_id, lease_value)
                continue
            self._streams_held += 1
            held = HeldStream(stream, lease_value, self.spool, self.worker_id, write_phase=self._streams_held % 2,
                              failed_uploads=self.failed_uploads)
            self.streams[held.stream_id] = held
            self._connecting.add(held.stream_id)
            held.task = self.loop.create_task(self._hold(held))
        metrics.streams_held.set(len(self.streams))

    async def _hold(self, held):
        log_context.bind(meeting=held.meeting_uuid, stream=held.stream_id)
        result = None
        try:
            secret = self._secrets.get(held.client_id)
            if secret is None:  # one lookup per app, not per stream
                secret = await self._in_thread(self._state_pool, _db, credentials.client_secret_for,
                                                         held.client_id)
                self._secrets[held.client_id] = secret
            held.store = sinks.StreamStore(
                held.stream_pk, held.stream_id, held.client_id, held.per_participant,
                on_state=lambda *a: self._on_zoom_state(held, *a),
                on_connection=lambda phase, detail: self._on_phase(held, phase, detail),
            )
            held.client = StreamClient(
                client_id=held.client_id, client_secret=secret, meeting_uuid=held.meeting_uuid,
                rtms_stream_id=held.stream_id, server_urls=held.server_urls, sink=held.store, media=MEDIA,
                per_participant_audio=held.per_participant, timings=self.timings,
                single_socket=settings.RTMS_SINGLE_MEDIA_SOCKET, allowed_hosts=self.allowed_hosts,
            )
            if held.lease_lost:  # fenced while the client was being built
                held.client.abort()
            log.info("holding stream", extra={"worker": self.worker_id})
            result = await held.client.run()
        except credentials.UnknownApp as exc:
            log.error("stream cannot be held: app credentials unknown", extra={"error": str(exc)})
            self._queue_state(services.stream_stopped, held.stream_id, None, reason="app credentials unknown",
                              worker=self.worker_id)
        except Exception:
            log.exception("stream holder failed")
        finally:
            await self._finish(held, result)

    async def _finish(self, held, result):
        outcome = result.outcome if result else None
        revoked = result is not None and result.stop_reason == StopReason.STREAM_REVOKED
        if revoked and held.store:
            held.store.discard()
        # Only a stream the handover itself cut off: one that ended meanwhile keeps its lease until it is stopped.
        handed_over = held.handing_over and not held.lease_lost and outcome is Outcome.ABORTED
        if handed_over:
            # SIGTERM: out of the renewal first (it would take the released lease back), then another process
            # takes the stream at once, while this one stores and uploads what it received.
            self.streams.pop(held.stream_id, None)
            await self._release(held)
            await self.loop.run_in_executor(None, services.enqueue_claim, held.stream_id)
        ended = outcome in (Outcome.STOPPED, Outcome.CLOSED, Outcome.NOT_ALLOWED) or (
            outcome is Outcome.REFUSED and result.status_code in FATAL_STATUSES)
        if outcome in (Outcome.STOPPED, Outcome.CLOSED):
            reason = result.stop_reason if result.stop_reason is not None else (
                StopReason.RECEIVER_REQUEST_CLOSE if outcome is Outcome.CLOSED else None)
            self._queue_state(services.stream_stopped, held.stream_id, reason, reason=f"rtms {outcome.value}",
                              worker=self.worker_id)
        elif outcome is Outcome.NOT_ALLOWED:  # the client logged which URL; never connected there
            self._queue_state(services.stream_failed, held.stream_id, StreamFailure.SERVER_URL_NOT_ALLOWED,
                              result.detail, worker=self.worker_id)
        elif outcome is Outcome.REFUSED and result.status_code in FATAL_STATUSES:
            self._queue_state(services.stream_stopped, held.stream_id, None,
                              reason=f"handshake refused: status {result.status_code} {result.detail}"[:200],
                              worker=self.worker_id)
        elif outcome is not None and outcome is not Outcome.ABORTED:
            # Duplicate, a transient refusal, or Zoom's window ran out: let go; Zoom's webhook or the
            # reconciler decides what happens next.
            log.warning("stream let go", extra={"outcome": outcome.value, "status": result.status_code,
                                                "detail": result.detail})
        try:
            await self._flush_stream(held)  # the row already on its way to "stopped" meanwhile
        except Exception:
            # Disk full, EIO, EMFILE: what it could not write is lost, but the stream is let go all the same. Kept,
            # its lease was renewed forever and nobody held the stream again (docs/ARCHITECTURE.md, "No re-claim
            # of ended streams").
            log.exception("last media of the stream not stored", extra={"stream": held.stream_id,
                                                                         "meeting": held.meeting_uuid})
        if ended and not held.lease_lost:
            # The lease goes only once the row says stopped: released earlier, the reconciler would see a
            # running stream with no holder and claim it again (docs/ARCHITECTURE.md, "Several worker machines").
            await self._states_stored()
        if not held.lease_lost and not handed_over:
            await self._release(held)
        self.streams.pop(held.stream_id, None)
        self._connecting.discard(held.stream_id)
        try:
            await self._leases.redis.hdel(stats.stats_key(), held.stream_id)
        except Exception:  # noqa: BLE001, S110 - stale figures are ignored after STALE_SECONDS
            pass
        if held.client:
            for name, value in held.client.counters.as_dict().items():
                self.retired[name] = self.retired.get(name, 0) + value
        metrics.streams_held.set(len(self.streams))
        log.info("stream released", extra={"outcome": outcome.value if outcome else "error",
                                           "stop_reason": result.stop_reason if result else None,
                                           "handover": held.handing_over, "lease_lost": held.lease_lost})

    async def _release(self, held):
        try:
            await self._leases.release(held.stream_id, held.lease_value)
        except Exception as exc:  # noqa: BLE001 - it expires by itself within the ttl
            log.warning("lease release failed", extra={"error": repr(exc)})

    def _renew_leases(self):
        """Renewal thread: every ttl/3, every held stream's lease in one pipelined round trip. Its own thread, so
        a busy event loop never costs a lease; a stream whose lease another worker holds, or that could not be
        renewed before it runs out (less a margin), has its sockets closed at once (fencing)."""
        ttl = settings.RTMS_LEASE_TTL
        interval = ttl / 3
        margin = ttl * 0.15
        # Its own connection, timing out well inside the lease: a hung Redis must not delay the fencing.
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=interval, socket_connect_timeout=interval)
        while not self._stopping.wait(interval):
            self._say_alive(client)
            self._publish_load(client)
            held_streams = [held for held in list(self.streams.values()) if not held.lease_lost]
            if not held_streams:
                continue
            try:
                results = leases.renew_many([(held.stream_id, held.lease_value) for held in held_streams], client)
            except Exception as exc:  # noqa: BLE001 - Redis unreachable: each lease still holds until valid_until
                for held in held_streams:
                    if time.monotonic() + interval >= held.lease_valid_until - margin:
                        self.loop.call_soon_threadsafe(self._fence, held, f"lease not renewable: {exc!r}")
                continue
            renewed_at = time.monotonic()
            for held, renewed in zip(held_streams, results):
                if renewed == leases.RELEASED:  # listed just before the loop released it: the stream is ending
                    continue
                if renewed == leases.TAKEN_BY_ANOTHER:
                    self.loop.call_soon_threadsafe(self._fence, held, "lease taken by another worker")
                    continue
                if renewed == leases.RETAKEN:
                    log.warning("lease re-taken after Redis lost it", extra={"stream": held.stream_id})
                held.lease_valid_until = renewed_at + ttl
            metrics.lease_renewals.inc(len(held_streams))

    def _say_alive(self, client):
        """Until the process ends (handing over included), its spool is not another host's to recover."""
        try:
            spool.keep_alive(self.worker_id, client)
        except redis.RedisError as exc:  # a host that finds it silent still finds its spool locked
            log.warning("spool writer not marked alive", extra={"error": repr(exc)})

    def _publish_load(self, client):
        """The heartbeat placement reads (rtms/placement.py): streams held and adopting, and the capacity."""
        if not self.accepting:
            return
        try:
            load, swept = placement.heartbeat(self.worker_id, len(self.streams) + self._adopting, self.capacity,
                                              client)
            # Streams that found every process full are placed as soon as there is room, not a reconcile later.
            waiting = list(placement.waiting_streams(client))[:max(0, self.capacity - load)]
            if waiting:
                placement.place_many(waiting, client)
        except redis.RedisError as exc:  # placement skips this process until the next heartbeat lands
            log.warning("load not published", extra={"error": repr(exc)})
            return
        metrics.placement_load.set(load)
        if swept:
            _forget_stale_figures(client)

    def _fence(self, held, why):
        if held.lease_lost:
            return
        held.lease_lost = True
        metrics.lease_losses.inc()
        log.warning("lease lost, sockets closed", extra={"why": why})
        if held.client:
            held.client.abort()

    # Zoom's side of the state, from the client (on the loop, must not block) -------------------------------------

    def _on_phase(self, held, phase, detail):
        if phase is Phase.READY:
            self._connecting.discard(held.stream_id)
            # Zoom keeps a pause across a reconnect and says so again after the ready (docs/STREAMS.md "Paused
            # streams"): until it says otherwise, a stream it last called paused is recorded paused, not active.
            state = State.PAUSED if held.paused else State.ACTIVE
            self._queue_state(services.change_state, held.stream_id, state, reason="connected",
                              worker=self.worker_id, session_id=_checked_session_id(held))
        elif phase is Phase.RECONNECTING:
            self._connecting.add(held.stream_id)
            metrics.reconnects.inc()
            self._queue_state(services.count_reconnect, held.stream_id)
            self._queue_state(services.change_state, held.stream_id, State.INTERRUPTED, reason=detail[:200],
                              worker=self.worker_id)

    def _on_zoom_state(self, held, stream_state, session_state, reason):
        if stream_state == StreamState.PAUSED or session_state == SessionState.PAUSED:
            held.paused = True
            self._queue_state(services.change_state, held.stream_id, State.PAUSED, reason="paused by zoom",
                              worker=self.worker_id)
        elif stream_state == StreamState.RESUMED or session_state == SessionState.RESUMED or held.paused and (
                stream_state == StreamState.ACTIVE or session_state == SessionState.STARTED):
            # ACTIVE / STARTED after a reconnect: the pause ended while we were away.
            held.paused = False
            self._queue_state(services.change_state, held.stream_id, State.ACTIVE, reason="resumed by zoom",
                              worker=self.worker_id)

    def _queue_state(self, fn, *args, **kwargs):
        self._states_queued += _waited_for(fn)
        self._state_queue.put_nowait((fn, args, kwargs))

    async def _states_stored(self):
        """Wait until every state change queued so far is stored (they are applied in order; the lease is
        still renewed meanwhile, as the stream is still held)."""
        stored = self.loop.create_future()
        self._queue_state(self.loop.call_soon_threadsafe, _resolve, stored)
        await stored

    async def _apply_states(self):
        """State changes in order, on the database thread, every queued one in a single trip there (a thousand
        streams connecting queue a thousand); retried from the first one not stored while the database is
        unreachable."""
        while True:
            changes = [await self._state_queue.get(), *self._take_queued_states()]
            self._states_queued -= sum(_waited_for(fn) for fn, _, _ in changes)
            delay = 0.2
            while changes:
                waited_for = any(_waited_for(fn) for fn, _, _ in changes)
                done, error = await self._in_thread(self._state_pool, _apply_in_order, changes, wake=waited_for)
                del changes[:done]
                if error is not None:
                    metrics.sink_write_failures.labels(what="state").inc()
                    log.warning("state change not stored yet, retrying", extra={"error": repr(error)[:300],
                                                                               "retry_in": delay})
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)

    def _take_queued_states(self):
        changes = []
        while not self._state_queue.empty():
            changes.append(self._state_queue.get_nowait())
        return changes

    async def _in_thread(self, pool, fn, *args, wake=True):
        """`fn(*args)` on one of the host's threads. With `wake`, its completion also cuts the pacer's wait
        short, so a state change never waits out the rest of a tick. Not for the periodic writes that nothing
        waits for (rows, the media index): each wake is one more pass over every socket, reading fewer frames
        per read. Those also start only while the paced loop waits, so as not to stretch its pass (docs/STREAMS.md,
        "How often the holder reads and stores")."""
        future = pool.submit(fn, *args) if wake else pool.submit(self._pacer.run_while_waiting, fn, *args)
        result = asyncio.wrap_future(future, loop=self.loop)  # its callback first: the loop is woken for it
        if wake:
            future.add_done_callback(lambda _: self._pacer.wake())
        return await result

    # Storage ----------------------------------------------------------------------------------------------------

    async def _flush_stream(self, held):
        """The stream is no longer held: store what it received, close its segments and upload them."""
        if held.store is None:
            return
        audio, frames = held.store.take_media()
        rows = held.store.take_rows()
        if rows is not None:
            self._pending_rows.append(rows)
        files = held.files
        keep = not held.store.discarded  # STREAM_REVOKED: the spooled segments are deleted, never uploaded

        def write():
            try:
                if audio or frames:
                    sinks.write_media(files, audio, frames)
            finally:  # a last write that failed (disk full) still closes and uploads what was written before it
                uploads = files.close(upload=keep, uploader=self._upload_pool)
            return uploads

        uploads = await self._in_thread(self._file_pool, write)
        if uploads:
            await asyncio.wait([asyncio.wrap_future(upload, loop=self.loop) for upload in uploads])
        if not keep:
            # The revocation's erasure (rtms.delete_stream_media) may have run while segments rolled earlier were
            # still uploading: once they are all done, what they stored goes too, so nothing of it stays.
            await self._in_thread(self._file_pool, files.discard_spool)
            # On an upload thread: storage is network I/O, which must not hold up every stream's appends.
            try:
                await self._in_thread(self._upload_pool, storage().delete_stream, held.stream_id)
            except StorageError:
                # Nothing new is uploaded for it any more: the revocation's task (rtms.delete_stream_media),
                # retried until storage answers, erases what is left.
                log.exception("revoked stream's storage not erased", extra={"stream": held.stream_id,
                                                                            "meeting": held.meeting_uuid})
            return
        index = list(files.index_rows())
        if index:
            self._queue_state(self._write_final_index, files, index)

    def _index_uploaded_again(self, uploaded):
        """On the loop: segments that failed to upload are stored now. A held stream's next index write says so
        (they are still among its rows); a stream no longer held had its last index written: it is written again
        for them, as at its end."""
        for files, row in uploaded:
            held = self.streams.get(files.stream_id)
            if held is None or held.files is not files:
                self._queue_state(self._write_final_index, files, [row])

    def _write_final_index(self, files, index):
        """State thread: the last index of a stream this process no longer holds; then its emptied spool."""
        sinks.write_index([(files, index)])
        self._file_pool.submit(files.remove_empty_spool_dirs)

    def _hand_media_to_files(self):
        """Each tick: what the streams received goes to the file thread, written while the loop waits: every
        stream's, or near saturation (the pacer's `write_every`) half of them, each stream every other tick.
        Returns the write (a future; None when there was nothing to write): a paced loop waits for it."""
        work = []
        self._ticks += 1
        every = self._pacer.write_every
        for held in list(self.streams.values()):
            if held.store is not None and held.write_phase % every == self._ticks % every:
                audio, frames = held.store.take_media()
                if audio or frames:
                    work.append((held.files, audio, frames))
        # The index and the live figures of a slice of the streams at a time, each stream's turn once per
        # INDEX_INTERVAL: all of them at once (a thousand streams' headers synced, index rows built and upserted,
        # figures encoded) held up the loop and the file thread for one tick in 60, which set the p99 lag
        # (1,100 streams: 297–368 ms; sliced 242–252; with no index at all 192–195; docs/STREAMS.md).
        now = time.monotonic()
        sliced = []
        if now - self._last_index_sync >= sinks.INDEX_INTERVAL / INDEX_SLICES:
            self._last_index_sync = now
            sliced = list(self.streams.values())[self._index_slice::INDEX_SLICES]
            self._index_slice = (self._index_slice + 1) % INDEX_SLICES
        if work or sliced:
            # Submitted now, not from a task: the write then runs while the loop waits out the tick.
            written = self._file_pool.submit(_write_media, work, [held.files for held in sliced], self._upload_pool)
            written.add_done_callback(
                lambda done: self.loop.call_soon_threadsafe(self._media_written, done, sliced))
            return written
        return None

    def _media_written(self, written, sliced):
        try:
            index = written.result()
        except Exception:
            log.exception("media write failed")
            return
        if index:
            if any(rows for _, rows in index):
                self._queue_state(sinks.write_index, index)
            self.loop.create_task(self._publish_stats(sliced))

    def _rows_period(self):
        """Rows are committed every tick while the process is lightly loaded, and every BUSY_ROWS_PERIOD once the
        pacer batches: a commit costs six statements whether it holds one line or a hundred, and at a line per
        stream every few seconds most of a busy process's commits held a handful (docs/STREAMS.md)."""
        return max(self._pacer.period, BUSY_ROWS_PERIOD) if self._pacer.batching else self._pacer.period

    async def _flush_rows(self):
        """Every `_rows_period`, the new rows of every stream in one transaction per chunk."""
        delay = self._rows_period()
        while True:
            await asyncio.sleep(delay)
            for held in list(self.streams.values()):
                rows = held.store.take_rows() if held.store is not None else None
                if rows is not None:
                    self._pending_rows.append(rows)
            if not self._pending_rows:
                delay = self._rows_period()
                continue
            try:
                await self._store_pending_rows()
                delay = self._rows_period()
            except Exception as exc:  # noqa: BLE001 - keep every row and retry: nothing is dropped
                metrics.sink_write_failures.labels(what="rows").inc()
                delay = min(delay * 2, 2.0)
                log.warning("rows not stored yet, kept for retry",
                            extra={"pending_batches": len(self._pending_rows), "error": repr(exc)[:300]})

    async def _store_pending_rows(self):
        """The pending rows, one transaction per chunk, each chunk dropped from them once committed; raises at a
        chunk the database did not take (unreachable, or aborted it as a deadlock's victim), the rest kept. One
        writer at a time: two would both write the first chunk, then each drop one from the front."""
        async with self._rows_writer:
            for chunk in list(sinks.split_batches(self._pending_rows)):
                await self._write_chunk(chunk)
                del self._pending_rows[: len(chunk)]

    async def _write_chunk(self, chunk):
        """One transaction for the chunk. A database that is down raises (kept, retried); a batch the database
        refuses for its content (its stream row was deleted) is written alone, and dropped if it fails again,
        so it can never block every other stream's rows."""
        try:
            await self._in_thread(self._db_pool, _db, sinks.write_rows, chunk, wake=False)
        except (DatabaseError, ValueError) as exc:
            if isinstance(exc, (OperationalError, InterfaceError)):
                raise
            for batch in chunk:
                try:
                    await self._in_thread(self._db_pool, _db, sinks.write_rows, [batch], wake=False)
                except (OperationalError, InterfaceError):
                    raise
                except (DatabaseError, ValueError) as refused:
                    log.error("rows refused by the database, dropped",
                              extra={"stream": batch.stream_id, "error": repr(refused)[:300],
                                     "transcripts": len(batch.transcripts), "chats": len(batch.chats)})

    async def _publish_stats(self, streams):
        """Per-stream frames/s, bytes/s and lag of `streams` into the shared hash read by `manage.py streams`
        (rtms.stats)."""
        figures = {}
        now = time.monotonic()
        for held in streams:
            if held.client is None or self.streams.get(held.stream_id) is not held:  # no longer held since the slice
                continue
            counters = held.client.counters.as_dict()
            frames = sum(counters[f"{m}_frames"] for m in metrics.MEDIA)
            volume = sum(counters[f"{m}_bytes"] for m in metrics.MEDIA)
            since, base_frames, base_bytes = held.rate_base
            elapsed = max(now - since, 1e-3)
            held.rate_base = (now, frames, volume)
            figures[held.stream_id] = json.dumps({
                "worker": self.worker_id, "frames_per_s": round((frames - base_frames) / elapsed, 1),
                "bytes_per_s": round((volume - base_bytes) / elapsed), "reconnects": counters["reconnects"],
                "lag_ms": round(held.files.last_lag_ms) if held.files.last_lag_ms is not None else None,
                "at": time.time(),
            })
        if figures:
            try:
                await self._leases.redis.hset(stats.stats_key(), mapping=figures)
            except Exception as exc:  # noqa: BLE001 - figures only; the next publish repairs them
                log.debug("stats not published", extra={"error": repr(exc)})

    # Control messages -------------------------------------------------------------------------------------------

    async def _listen_for_control(self):
        delay = 0.2
        while True:
            pubsub = self._leases.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(control_channel())
                delay = 0.2
                async for message in pubsub.listen():
                    self._on_control(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis restart: resubscribe; the reconciler repeats stops
                log.warning("control channel lost, resubscribing", extra={"error": repr(exc), "retry_in": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: BLE001, S110 - the connection is already gone
                    pass

    def _on_control(self, data):
        try:
            message = json.loads(data)
            if message.get("action") == "drain":
                if self.node and message.get("node") == self.node:
                    log.info("drain requested: handing every stream over", extra={"node": self.node})
                    threading.Thread(target=self.shutdown, name="rtms-drain", daemon=True).start()
                return
            held = self.streams.get(message["stream_id"])
        except (ValueError, TypeError, KeyError, AttributeError):
            return
        if held is None:
            return
        action = message.get("action")
        # Bound for this message only: the control channel's task reads every stream's messages and the node's.
        with log_context.bound(meeting=held.meeting_uuid, stream=held.stream_id):
            if action == "stop" and held.client is not None and not held.closing:
                held.closing = True  # the reconciler repeats the stop every tick until the stream is released
                log.info("stop message received, closing stream")
                self.loop.create_task(held.client.close())
            elif action == "move" and isinstance(message.get("server_urls"), str):
                if message["server_urls"] != held.server_urls:
                    self.loop.create_task(self._move(held, message["server_urls"]))
            elif action == "interrupted" and held.client is not None:
                held.client.verify_signaling()  # docs/STREAMS.md, case 2

    async def _move(self, held, server_urls):
        """Zoom's RTMS server failed (docs/STREAMS.md, case 1): connect to the new one at once, fenced as a takeover
        is: only while the lease is still ours (a holder that lost it is fenced instead), and the client drops the
        old sockets before it opens new ones, so the stream never has two signaling connections."""
        log_context.bind(meeting=held.meeting_uuid, stream=held.stream_id)
        try:
            ours = await self._leases.holds(held.stream_id, held.lease_value)
        except Exception as exc:  # noqa: BLE001 - Redis unreachable: the renewal thread fences if it must
            log.warning("lease not checked before the move", extra={"error": repr(exc)})
            ours = True
        if not ours:
            self._fence(held, "lease taken by another worker (seen before a move)")
            return
        held.server_urls = server_urls  # a client not built yet starts there
        if held.client is not None and held.client.move_to(server_urls):
            log.info("zoom moved the stream to another rtms server, reconnecting there")

    async def _hand_over_all(self):
        held_streams = list(self.streams.values())
        for held in held_streams:
            held.handing_over = True
            if held.client:
                held.client.abort()
        tasks = [held.task for held in held_streams if held.task]
        if tasks:
            await asyncio.wait(tasks, timeout=20)  # each is taken over at once; this bounds its last upload
        # The last writes are tried twice: the streams' new holders claim them meanwhile and write their rows, and
        # PostgreSQL may abort a write as a deadlock's victim, which the next try gets past.
        if self._pending_rows:
            try:
                try:
                    await self._store_pending_rows()
                except OperationalError:
                    await self._store_pending_rows()
            except Exception as exc:  # noqa: BLE001
                log.warning("rows lost at shutdown: database unreachable",
                            extra={"pending_batches": len(self._pending_rows), "error": repr(exc)})
        changes = self._take_queued_states()
        done, error = await self._in_thread(self._state_pool, _apply_in_order, changes)
        if isinstance(error, OperationalError):
            del changes[:done]
            done, error = await self._in_thread(self._state_pool, _apply_in_order, changes)
        if error is not None:
            log.error("state changes lost at shutdown: database unreachable",
                      extra={"lost": len(changes) - done, "error": repr(error)[:300]})
        log.info("streams handed over", extra={"count": len(held_streams), "worker": self.worker_id,
                                               "not_finished": len(self.streams)})

    # Metrics ----------------------------------------------------------------------------------------------------

    def _counter_snapshots(self):
        yield self.retired
        for held in list(self.streams.values()):
            if held.client:
                yield held.client.counters.as_dict()

    def _serve_metrics(self):
        port = settings.RTMS_METRICS_PORT
        if not port:
            return
        from prometheus_client import start_http_server

        address = settings.RTMS_METRICS_ADDR
        # One endpoint per pool process: the first port free from RTMS_METRICS_PORT, so a worker of N processes
        # serves ports PORT to PORT + N - 1 (a replaced process takes the one its predecessor freed).
        for candidate in range(port, port + 32):
            try:
                start_http_server(candidate, addr=address, registry=metrics.HOST)
            except OSError:
                continue
            log.info("worker metrics endpoint", extra={"address": address, "port": candidate})
            return
        log.warning("no free port for the worker metrics endpoint", extra={"address": address, "from_port": port})
