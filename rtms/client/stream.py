"""StreamClient: holds one RTMS stream (signaling + media sockets) on an asyncio loop. See the package docstring."""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import protocol as p
from .allowlist import HostAllowList, URLNotAllowed
from .protocol import MalformedFrame, MediaType, MsgType, NotAWellFormedAudioFrame, SessionState, Status, StreamState
from .transport import Backend, Connection, default_backend

log = logging.getLogger("rtms.client")

_now = time.monotonic
_decode_frame = p.decode_frame
_decode_audio_frame = p.decode_audio_frame


class StreamSink:
    """What the client delivers to. Subclass it and override what you need; every method is a plain sync call
    made on the event loop for each message, so it must only append to buffers (no I/O, no awaits).

    ``pcm``/``data`` are ``bytes`` owned by the sink. Timestamps are Zoom's milliseconds since the epoch.
    """

    def on_audio(self, user_id: int, user_name: str | None, timestamp_ms: int, pcm: bytes) -> None:
        """20 ms of L16 16 kHz mono; ``user_id`` 0 for the mixed stream."""

    def on_video(self, user_id: int, user_name: str | None, timestamp_ms: int, data: bytes) -> None:
        """One video frame (JPG/PNG/H.264 as requested)."""

    def on_deskshare(self, user_id: int, user_name: str | None, timestamp_ms: int, data: bytes) -> None:
        """One screen-share frame."""

    def on_transcript(self, user_id: int, user_name: str | None, start_ms: int, end_ms: int, timestamp_ms: int,
                      language: int | None, text: str) -> None:
        """One utterance."""

    def on_chat(self, user_id: int | None, user_name: str | None, timestamp_ms: int, text: str) -> None:
        """One chat message."""

    def on_event(self, event_type: int, event: dict[str, Any]) -> None:
        """EVENT_UPDATE; ``event`` is the message's ``event`` object as sent (participants, user_id, …)."""

    def on_state(self, stream_state: int | None, session_state: int | None, reason: int | None) -> None:
        """STREAM_STATE_UPDATE/RESP (``session_state`` None) or SESSION_STATE_UPDATE/RESP (``stream_state`` None);
        ``reason`` is the stop reason when the server gave one."""

    def on_connection(self, phase: Phase, detail: str) -> None:
        """The client's own connection phase changed (connecting, ready, reconnecting, finished)."""


class Phase(str, enum.Enum):
    CONNECTING = "connecting"      # first handshake under way
    READY = "ready"                # handshakes done, CLIENT_READY_ACK sent: media flows
    RECONNECTING = "reconnecting"  # a socket dropped or went silent; re-handshaking inside Zoom's window
    FINISHED = "finished"          # run() is returning


class Outcome(str, enum.Enum):
    STOPPED = "stopped"            # the server ended the stream (stop_reason says why)
    CLOSED = "closed"              # we asked with close() and the server confirmed (or the wait ran out)
    ABORTED = "aborted"            # abort() (lease fencing): sockets dropped, nothing sent
    DUPLICATE = "duplicate"        # status 8 on every try: another connection holds the stream
    REFUSED = "refused"            # a handshake failed with a fatal status (status_code says which)
    GAVE_UP = "gave_up"            # could not reconnect inside Zoom's reconnection window
    NOT_ALLOWED = "not_allowed"    # a server URL outside the allowed hosts: no socket was opened to it


@dataclass(frozen=True)
class StreamResult:
    outcome: Outcome
    stop_reason: int | None = None
    status_code: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Timings:
    """Every wait the client makes, in seconds. Zoom's figures by default; ``scaled()`` shrinks them for tests."""

    keepalive_interval: float = 10.0      # Zoom's keep-alive period on a socket carrying nothing else; our watchdog's
    keepalive_timeout: float = 65.0       # nothing at all heard on a socket this long: reconnect (Zoom's advice)
    signaling_window: float = 60.0        # Zoom waits this long for a signaling reconnect
    media_window: float = 65.0            # … and this long for a media reconnect
    handshake_timeout: float = 10.0
    backoff_base: float = 3.0             # Zoom's advice for cases 2 and 3 (docs/STREAMS.md): 3 s doubling to 30 s
    backoff_cap: float = 30.0
    media_interrupt_grace: float = 1.0    # after Zoom's MEDIA_CONNECTION_INTERRUPTED, wait this long for the close
    duplicate_backoff: float = 1.5        # status 8: retry in 1.5 s·2ⁿ, up to duplicate_tries times (docs/ZOOM.md §6.3)
    duplicate_tries: int = 3
    close_timeout: float = 5.0            # close(): wait this long for STREAM_CLOSE_RESP and the state update

    def scaled(self, factor: float) -> Timings:
        return replace(self, **{name: getattr(self, name) * factor for name in (
            "keepalive_interval", "keepalive_timeout", "signaling_window", "media_window", "handshake_timeout",
            "backoff_base", "backoff_cap", "media_interrupt_grace", "duplicate_backoff", "close_timeout")})


class StreamCounters:
    """Plain ints, cheap to bump on every frame and to read from a Prometheus collector."""

    __slots__ = ("audio_frames", "audio_bytes", "video_frames", "video_bytes", "deskshare_frames",
                 "deskshare_bytes", "transcript_frames", "transcript_bytes", "chat_frames", "chat_bytes",
                 "events", "keepalives", "reconnects", "malformed", "sink_errors")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"status={status} reason={reason!r}")
        self.status = status
        self.reason = reason


class _Duplicate(Exception):
    pass


class _Transient(Exception):
    pass


_MALFORMED_LOG_INTERVAL = 10.0
# Statuses worth retrying inside Zoom's window; every other non-zero status ends run() with REFUSED.
_RETRYABLE_STATUSES = frozenset({Status.DUPLICATE_MEDIA_DATA_CONNECTION, Status.INTERNAL_EXCEPTION})
_STOP_BY_US = p.StopReason.RECEIVER_REQUEST_CLOSE


class StreamClient:
    """One RTMS stream: handshakes, keep-alives, reconnects and delivery to a :class:`StreamSink`."""

    # Slots and a class-level dispatch table: a worker holds ~1000 of these, memory per stream counts.
    __slots__ = (
        "meeting_uuid", "rtms_stream_id", "signaling_url", "media", "single_socket", "timings", "counters",
        "phase", "stream_state", "session_state", "session_id", "_client_id", "_client_secret",
        "_per_participant_audio", "_transcript_language", "_events", "_buffer_data", "_backend", "_sink",
        "_sink_audio", "_sink_video", "_sink_deskshare", "_sink_transcript", "_sink_chat", "_signaling", "_media",
        "_retiring", "_allowed_hosts", "_signature", "_held", "_plan", "_media_lost", "_repair", "_repair_started_ms",
        "_zoom_said_media", "_nudge", "_moved", "_probe",
        "_last_heard", "_heard", "_handshake_waiters", "_interrupt", "_watchdog", "_stop_reason", "_server_stopping",
        "_close_requested", "_aborted", "_finished", "_sequence", "_malformed_unlogged", "_malformed_logged_at",
        "_sink_errors_logged_at")

    def __init__(self, *, client_id: str, client_secret: str, meeting_uuid: str, rtms_stream_id: str,
                 server_urls: str, sink: StreamSink,
                 media: MediaType = MediaType.AUDIO | MediaType.TRANSCRIPT, single_socket: bool = False,
                 per_participant_audio: bool = False,
                 transcript_language: int = p.TRANSCRIPT_LANGUAGE_ENGLISH,
                 events: tuple[int, ...] = p.DEFAULT_EVENT_SUBSCRIPTION, buffer_data: bool = True,
                 timings: Timings = Timings(), backend: Backend | None = None,
                 allowed_hosts: HostAllowList | None = None) -> None:
        self.meeting_uuid = meeting_uuid
        self.rtms_stream_id = rtms_stream_id
        self.signaling_url = p.pick_signaling_url(server_urls)
        self.media = MediaType(media) & ~MediaType.ALL
        self.single_socket = single_socket
        self.timings = timings
        self.counters = StreamCounters()
        self.phase = Phase.CONNECTING
        self.stream_state: int | None = None
        self.session_state: int | None = None
        self.session_id: str | None = None
        self._client_id = client_id
        self._client_secret = client_secret
        self._per_participant_audio = per_participant_audio
        self._transcript_language = transcript_language
        self._events = tuple(events)
        self._buffer_data = buffer_data
        self._backend = backend or default_backend()
        # Where sockets may go (signaling and media URLs both come from outside); None: anywhere (bench, tests
        # of the client alone). The session host always passes the deployment's list.
        self._allowed_hosts = allowed_hosts
        self._sink = sink
        # Bound once: the hot path must not look these up per frame.
        self._sink_audio = sink.on_audio
        self._sink_video = sink.on_video
        self._sink_deskshare = sink.on_deskshare
        self._sink_transcript = sink.on_transcript
        self._sink_chat = sink.on_chat
        self._signaling: Connection | None = None
        self._media: list[Connection] = []
        self._retiring: list[Connection] = []  # sockets being closed gracefully before a reconnect
        self._signature = ""
        self._held = False                     # handshakes done and the signaling socket still ours
        self._plan: list[tuple[MediaType, str]] = []  # the media sockets of the last signaling handshake
        self._media_lost: set[str] = set()     # labels of media sockets to redo while signaling is held
        self._repair: asyncio.Task[None] | None = None
        self._repair_started_ms = 0.0          # wall clock: Zoom's word about an older drop is the same drop
        self._zoom_said_media = False          # Zoom's word (event 7, or state 2 with reason 14) for this repair
        self._nudge: asyncio.Future[None] | None = None  # wakes a repair waiting for the close or Zoom's word
        self._moved = False                    # move_to(): connect to the new server at once
        self._probe: asyncio.TimerHandle | None = None
        # Liveness per socket (docs/STREAMS.md "A socket that goes silent"): a frame only adds its socket to
        # `_heard`; the watchdog's tick turns that into `_last_heard`, so no frame pays for a clock read.
        self._last_heard: dict[Connection, float] = {}
        self._heard: set[Connection] = set()
        self._handshake_waiters: dict[Connection, asyncio.Future[dict[str, Any]]] = {}
        self._interrupt: asyncio.Future[str] | None = None  # resolved with why the held connection must end
        self._watchdog: asyncio.TimerHandle | None = None
        self._stop_reason: int | None = None
        self._server_stopping = False    # session STOPPED / stream TERMINATING / close confirmed: do not reconnect
        self._close_requested = False
        self._aborted = False
        self._finished: asyncio.Future[StreamResult] | None = None
        self._sequence = random.randint(1, 2**31 - 1)
        self._malformed_unlogged = 0
        self._malformed_logged_at = -_MALFORMED_LOG_INTERVAL
        self._sink_errors_logged_at = -_MALFORMED_LOG_INTERVAL

    # -----------------------------------------------------------------------------------------------------------
    # Public control

    async def run(self) -> StreamResult:
        """Hold the stream until it ends; returns why. Safe to call once."""
        loop = asyncio.get_running_loop()
        self._finished = loop.create_future()
        try:
            result = await self._run()
        finally:
            self._cancel_watchdog()
            self._stop_repair()
            for conn in self._connections():
                conn.abort()
        self.phase = Phase.FINISHED
        self._log("stream_finished", outcome=result.outcome.value, stop_reason=result.stop_reason,
                  status=result.status_code, detail=result.detail)
        self._notify_phase(Phase.FINISHED, result.outcome.value)
        if not self._finished.done():
            self._finished.set_result(result)
        return result

    async def close(self) -> StreamResult | None:
        """Graceful stop: STREAM_CLOSE_REQ (21) on signaling, then wait for STREAM_CLOSE_RESP (22) and the state
        update (bounded by ``timings.close_timeout``); sockets are dropped if the server does not finish."""
        self._close_requested = True
        if self._held and self._signaling is not None and not self._signaling.closed:
            self._signaling.send(p.stream_close_request(self.rtms_stream_id))
            self._log("stream_close_requested")
        else:
            self._wake("close_requested")
        if self._finished is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(self._finished), self.timings.close_timeout)
        except TimeoutError:
            self._wake("close_timeout")
            return await self._finished

    def abort(self) -> None:
        """Drop every socket now, sending nothing (lease fencing). ``run()`` then returns ABORTED."""
        self._aborted = True
        for conn in self._connections():
            conn.abort()
        self._wake("aborted")

    def move_to(self, server_urls: str) -> bool:
        """Zoom's RTMS server failed and Zoom named another (docs/STREAMS.md, case 1): drop every socket and
        handshake against the new server at once. False when that is the server already used."""
        url = p.pick_signaling_url(server_urls)
        if url == self.signaling_url:
            return False
        self._log("stream_moving", server=url)
        self.signaling_url = url
        self._moved = True
        self._held = False
        self._wake("moved to a new RTMS server")
        for conn in self._connections():  # the old server is gone: nothing to say to it
            conn.abort()
        return True

    def verify_signaling(self) -> None:
        """Zoom reported the signaling connection interrupted (docs/STREAMS.md, case 2) while ours looks alive:
        ask for the stream's state; no answer within the handshake timeout means reconnect everything."""
        if not self._holding() or self._probe is not None or self._signaling is None:
            return
        self._signaling.send(p.stream_state_request(self.rtms_stream_id))
        self._probe = asyncio.get_running_loop().call_later(self.timings.handshake_timeout, self._probe_unanswered)

    def _probe_unanswered(self) -> None:
        self._probe = None
        self._log("signaling_unanswered", level=logging.WARNING)
        self._wake("signaling_unanswered")

    # -----------------------------------------------------------------------------------------------------------
    # Connection lifecycle

    async def _run(self) -> StreamResult:
        signature = self._signature = p.handshake_signature(self._client_id, self._client_secret,
                                                            self.meeting_uuid, self.rtms_stream_id)
        t = self.timings
        attempt = 0
        duplicate_tries = 0
        window = t.signaling_window
        outage_started = _now()
        while True:
            if self._aborted:
                return StreamResult(Outcome.ABORTED)
            if self._close_requested:
                return StreamResult(Outcome.CLOSED, self._stop_reason)
            if self._moved:  # a new server: a fresh start there, with a fresh window
                self._moved = False
                attempt = duplicate_tries = 0
                window = t.signaling_window
                outage_started = _now()
            try:
                await self._connect(signature)
            except _Duplicate:
                self._drop_all()
                duplicate_tries += 1
                if duplicate_tries > t.duplicate_tries:
                    return StreamResult(Outcome.DUPLICATE, status_code=Status.DUPLICATE_SIGNAL_REQUEST,
                                        detail="another connection holds the stream")
                delay = t.duplicate_backoff * 2 ** (duplicate_tries - 1)
                self._log("duplicate_signal_request", retry_in=round(delay, 3), attempt=duplicate_tries)
                await self._pause(delay)
                continue
            except _Refused as refused:
                self._drop_all()
                return StreamResult(Outcome.REFUSED, status_code=refused.status, detail=refused.reason)
            except URLNotAllowed as refused:
                self._drop_all()
                self._log("server_url_not_allowed", logging.WARNING, detail=str(refused))
                return StreamResult(Outcome.NOT_ALLOWED, detail=str(refused))
            except Exception as exc:  # noqa: BLE001 - socket errors, timeouts, transient statuses: retry in the window
                self._drop_all()
                if self._aborted or self._moved:
                    continue
                remaining = window - (_now() - outage_started)
                if remaining <= 0:
                    return StreamResult(Outcome.GAVE_UP, self._stop_reason,
                                        detail=f"no reconnect within {window:g}s: {_describe(exc)}")
                delay = min(_backoff(t, attempt), remaining)
                attempt += 1
                self._log("connect_failed", error=_describe(exc), retry_in=round(delay, 3), attempt=attempt)
                await self._pause(delay)
                continue

            attempt = 0  # a good handshake resets the backoff
            duplicate_tries = 0
            cause = await self._hold()
            self._held = False
            self._stop_repair()
            if self._aborted:
                return StreamResult(Outcome.ABORTED)
            if cause == "terminated" or self._server_stopping:
                await self._close_sockets()
                if self._close_requested:
                    return StreamResult(Outcome.CLOSED, self._stop_reason or _STOP_BY_US)
                return StreamResult(Outcome.STOPPED, self._stop_reason)
            if self._close_requested:
                await self._close_sockets()
                return StreamResult(Outcome.CLOSED, self._stop_reason, detail=cause)
            # A socket dropped or went silent: Zoom keeps the stream for 60 s (signaling) / 65 s (media).
            self.counters.reconnects += 1
            window = t.signaling_window if cause.startswith("signaling") else t.media_window
            outage_started = _now()
            self.phase = Phase.RECONNECTING
            self._log("stream_reconnecting", cause=cause)
            self._notify_phase(Phase.RECONNECTING, cause)
            if self._moved:
                self._drop_all()
            else:
                await self._close_sockets()

    async def _connect(self, signature: str) -> None:
        loop = asyncio.get_running_loop()
        self._interrupt = loop.create_future()
        if self._allowed_hosts is not None:
            self._allowed_hosts.check(self.signaling_url)
        signaling = await self._open_socket(self.signaling_url, "signaling")
        self._signaling = signaling
        self._last_heard[signaling] = _now()
        response = await self._exchange(signaling, p.signaling_handshake(
            self.meeting_uuid, self.rtms_stream_id, signature, self._sequence, self._buffer_data))
        status, reason = p.parse_status(response)
        if status == Status.DUPLICATE_SIGNAL_REQUEST or "duplicate signal request" in reason.lower():
            raise _Duplicate()
        if status in _RETRYABLE_STATUSES:
            raise _Transient(f"signaling handshake status {status}: {reason}")
        if status != Status.OK:
            raise _Refused(status, reason)
        plan = self._plan = self._check_media_urls(self._media_plan(p.parse_media_server_urls(response)))
        self._media_lost.clear()
        try:
            async with asyncio.TaskGroup() as group:  # a failed media handshake cancels its siblings
                for mask, url in plan:
                    group.create_task(self._open_media(mask, url, signature))
        except BaseExceptionGroup as failures:
            # Report the most decisive failure: a fatal status beats a transient one.
            errors = list(failures.exceptions)
            raise next((e for e in errors if isinstance(e, _Refused)), errors[0]) from None
        if self._interrupt.done():
            cause = self._interrupt.result()
            if cause == "terminated" or self._aborted or self._close_requested:
                return  # _hold() hands the cause straight to _run()
            raise _Transient(f"lost during handshake: {cause}")
        signaling.send(p.client_ready_ack(self.rtms_stream_id))
        if self._events:
            signaling.send(p.event_subscription(self._events))
        self.phase = Phase.READY
        self._held = True
        self._arm_watchdog()
        self._log("stream_ready", media=",".join(conn.label for conn in self._media), backend=self._backend.name)
        self._notify_phase(Phase.READY, "")

    def _media_plan(self, urls: dict[str, str]) -> list[tuple[MediaType, str]]:
        """Which media sockets to open: one per wanted type (default), or one ``all`` socket."""
        wanted = [m for m in p.SINGLE_MEDIA_TYPES if m & self.media]
        per_type = [(m, urls[p.MEDIA_URL_KEYS[m]]) for m in wanted if p.MEDIA_URL_KEYS[m] in urls]
        if self.single_socket and "all" in urls:
            return [(MediaType.ALL, urls["all"])]
        if len(per_type) < len(wanted) and "all" in urls:
            return [(MediaType.ALL, urls["all"])]
        if not per_type:
            raise _Refused(Status.INVALID_MEDIA_TYPE, f"server offers no URL for the wanted media ({sorted(urls)})")
        if len(per_type) < len(wanted):
            self._log("media_unavailable", missing=",".join(
                p.MEDIA_URL_KEYS[m] for m in wanted if p.MEDIA_URL_KEYS[m] not in urls))
        return per_type

    def _check_media_urls(self, plan: list[tuple[MediaType, str]]) -> list[tuple[MediaType, str]]:
        """Every media URL of the plan on the allow list, before any media socket is opened."""
        if self._allowed_hosts is not None:
            for _, url in plan:
                self._allowed_hosts.check(url)
        return plan

    async def _open_media(self, mask: MediaType, url: str, signature: str) -> None:
        label = p.MEDIA_URL_KEYS[mask]
        carried = self.media if mask is MediaType.ALL else mask
        conn = await self._open_socket(url, label)
        self._media.append(conn)
        self._last_heard[conn] = _now()
        params = p.media_params_for(carried,
                                    per_participant_audio=self._per_participant_audio,
                                    transcript_language=self._transcript_language)
        media_type = MediaType.ALL if mask is MediaType.ALL else mask
        response = await self._exchange(conn, p.data_handshake(
            self.meeting_uuid, self.rtms_stream_id, signature, self._sequence, media_type, params))
        status, reason = p.parse_status(response)
        if status in _RETRYABLE_STATUSES:  # e.g. 16: our previous media socket is not yet released
            raise _Transient(f"media {label} handshake status {status}: {reason}")
        if status != Status.OK:
            raise _Refused(status, f"media {label}: {reason}")

    async def _open_socket(self, url: str, label: str) -> Connection:
        """Connect one socket, giving up at once when abort()/close() or a lost sibling socket interrupts."""
        assert self._interrupt is not None
        connecting = asyncio.ensure_future(self._backend.connect(
            url, self, timeout=self.timings.handshake_timeout, label=label))
        try:
            await asyncio.wait((connecting, self._interrupt), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # a sibling media handshake failed: leave no socket behind
            _discard_connection(connecting)
            raise
        if not connecting.done():
            _discard_connection(connecting)
            raise _Transient(f"{label} connect interrupted: {self._interrupt.result()}")
        conn = connecting.result()
        if self._interrupt.done():
            conn.abort()
            raise _Transient(f"{label} connect interrupted: {self._interrupt.result()}")
        return conn

    async def _exchange(self, conn: Connection, request: bytes) -> dict[str, Any]:
        """Send a handshake request and wait for its response on the same socket (or the socket's loss)."""
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._handshake_waiters[conn] = waiter
        conn.send(request)
        try:
            return await asyncio.wait_for(waiter, self.timings.handshake_timeout)
        finally:
            self._handshake_waiters.pop(conn, None)

    async def _hold(self) -> str:
        assert self._interrupt is not None
        return await self._interrupt

    async def _pause(self, delay: float) -> bool:
        """Sleep between attempts; abort() and close() cut it short."""
        loop = asyncio.get_running_loop()
        self._interrupt = loop.create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._interrupt), delay)
        except TimeoutError:
            return True
        return False

    async def _close_sockets(self) -> None:
        conns = self._connections()
        self._signaling = None
        self._media = []
        self._last_heard.clear()
        self._heard.clear()
        self._cancel_watchdog()
        if conns:
            self._retiring = conns  # abort() during this close must still drop them at once
            try:
                await asyncio.gather(*(conn.close(min(1.0, self.timings.close_timeout)) for conn in conns))
            finally:
                self._retiring = []

    def _drop_all(self) -> None:
        for conn in self._connections():
            conn.abort()
        self._signaling = None
        self._media = []
        self._last_heard.clear()
        self._heard.clear()
        self._cancel_watchdog()

    def _connections(self) -> list[Connection]:
        conns = self._retiring + self._media
        if self._signaling is not None:
            conns.insert(0, self._signaling)
        return conns

    def _wake(self, cause: str) -> None:
        interrupt = self._interrupt
        if interrupt is not None and not interrupt.done():
            interrupt.set_result(cause)

    # -- media-only repair while signaling is held (docs/STREAMS.md, case 3) ------------------------------------

    def _holding(self) -> bool:
        """Handshakes done and nothing has ended the hold yet (a drop, a move, abort(), close())."""
        return self._held and self._interrupt is not None and not self._interrupt.done()

    def _signaling_lost(self) -> bool:
        return self._signaling is None or self._signaling.closed

    def _zoom_reports_media_interrupted(self, why: str, timestamp: Any) -> None:
        """MEDIA_CONNECTION_INTERRUPTED, or STREAM_STATE_UPDATE INTERRUPTED with reason 14: both say one media
        socket dropped. The drop being repaired (or one Zoom saw before the last repair began) is not redone."""
        if not self._holding() or self._zoom_said_media or (
                self._repair is None and type(timestamp) is int and timestamp <= self._repair_started_ms):
            self._log("media_interruption_already_handled", why=why)
            return
        self._zoom_said_media = True
        self._start_repair(why)
        self._nudge_repair()

    def _start_repair(self, why: str) -> None:
        if self._repair is None:
            self._repair = asyncio.get_running_loop().create_task(self._repair_media(why))

    def _nudge_repair(self) -> None:
        if self._nudge is not None and not self._nudge.done():
            self._nudge.set_result(None)

    async def _await_closed_socket_and_zoom_word(self) -> None:
        """A media drop shows as a closed socket and as Zoom's word on signaling, in either order; a stop also
        closes the media sockets, but Zoom's word then is TERMINATED. Wait for both, at most the grace."""
        deadline = _now() + self.timings.media_interrupt_grace
        loop = asyncio.get_running_loop()
        while not (self._media_lost and self._zoom_said_media) and not self._server_stopping:
            remaining = deadline - _now()
            if remaining <= 0:
                return
            self._nudge = loop.create_future()
            try:
                await asyncio.wait_for(self._nudge, remaining)
            except TimeoutError:
                return

    def _stop_repair(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        if self._repair is not None:
            self._repair.cancel()
            self._repair = None
        self._zoom_said_media = False

    async def _repair_media(self, why: str) -> None:
        """Redo the lost media sockets (handshake + CLIENT_READY_ACK) with Zoom's backoff inside its media window;
        a fatal refusal or the window running out hands over to a full reconnect."""
        t = self.timings
        self._repair_started_ms = time.time() * 1000
        this_repair = asyncio.current_task()  # here, not in `finally`: a task closed with its loop has no loop then
        try:
            await self._await_closed_socket_and_zoom_word()
            if self._server_stopping or not self._holding():
                return  # the stream is ending, not interrupted
            self.counters.reconnects += 1
            self.phase = Phase.RECONNECTING
            self._log("media_reconnecting", cause=why)
            self._notify_phase(Phase.RECONNECTING, f"{why} (media only)")
            if not self._media_lost:
                # Zoom said so and none of ours closed (a half-open socket): redo every media socket.
                for conn in list(self._media):
                    self._media.remove(conn)
                    self._last_heard.pop(conn, None)
                    self._media_lost.add(conn.label)
                    conn.abort()
            outage_started = _now()
            attempt = 0
            while self._media_lost:
                labels = set(self._media_lost)
                before = set(self._media)
                try:
                    async with asyncio.TaskGroup() as group:
                        for mask, url in self._plan:
                            if p.MEDIA_URL_KEYS[mask] in labels:
                                group.create_task(self._open_media(mask, url, self._signature))
                except BaseExceptionGroup as failures:
                    for conn in [c for c in self._media if c not in before]:
                        self._media.remove(conn)
                        self._last_heard.pop(conn, None)
                        conn.abort()
                    refused = next((e for e in failures.exceptions if isinstance(e, _Refused)), None)
                    remaining = t.media_window - (_now() - outage_started)
                    if refused is not None or remaining <= 0:
                        self._log("media_reconnect_failed", level=logging.WARNING,
                                  error=_describe(refused or failures.exceptions[0]))
                        self._wake(f"media reconnect failed: {_describe(refused or failures.exceptions[0])}")
                        return
                    delay = min(_backoff(t, attempt), remaining)
                    attempt += 1
                    self._log("media_connect_failed", error=_describe(failures.exceptions[0]),
                              retry_in=round(delay, 3), attempt=attempt)
                    await asyncio.sleep(delay)
                    continue
                self._media_lost -= labels
                attempt = 0
            if self._signaling_lost():
                return
            self._signaling.send(p.client_ready_ack(self.rtms_stream_id))
            self.phase = Phase.READY
            self._log("media_reconnected", media=",".join(conn.label for conn in self._media))
            self._notify_phase(Phase.READY, "media reconnected")
        finally:
            self._nudge = None
            if self._repair is this_repair:
                self._repair = None
                self._zoom_said_media = False

    # -- liveness watchdog: one timer per stream, fired every keep-alive interval --------------------------------

    def _arm_watchdog(self) -> None:
        self._cancel_watchdog()
        self._watchdog = asyncio.get_running_loop().call_later(self.timings.keepalive_interval, self._check_silence)

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _check_silence(self) -> None:
        """Any frame proves its socket alive, not only a keep-alive: Zoom sends keep-alives only on a socket that
        carries nothing else, so a socket carrying speech hears none for as long as someone speaks. A socket
        that heard nothing at all for ``keepalive_timeout`` is dead (reconnect). A frame counts from the tick after
        it, so the watchdog acts late, never early: 70–80 s after a socket's last frame at Zoom's figures."""
        self._watchdog = None
        now = _now()
        last_heard = self._last_heard
        for conn in self._heard:
            if conn in last_heard:
                last_heard[conn] = now
        self._heard.clear()
        limit = self.timings.keepalive_timeout
        for conn, last in last_heard.items():
            if now - last > limit:
                self._log("keepalive_stalled", socket=conn.label, silent_for=round(now - last, 1))
                self._wake(f"{conn.label}_silent")
                return
        self._arm_watchdog()

    # -----------------------------------------------------------------------------------------------------------
    # Frame handling (transport callbacks). on_text is the hot path.

    def on_text(self, conn: Connection, payload: Any) -> None:
        self._heard.add(conn)
        try:
            audio = _decode_audio_frame(payload).content
        except NotAWellFormedAudioFrame:
            self._on_any_frame(conn, payload)
            return
        pcm = audio.data
        counters = self.counters
        counters.audio_frames += 1
        counters.audio_bytes += len(pcm)
        try:
            self._sink_audio(audio.user_id, audio.user_name, audio.timestamp, pcm)
        except Exception as exc:  # noqa: BLE001 - a sink bug must not cost the stream its connection
            self._sink_failed(exc)

    def _on_any_frame(self, conn: Connection, payload: Any) -> None:
        """Every frame but a well-formed audio one: decoded, checked by kind and dispatched; a refusal names the
        field at fault."""
        try:
            message = _decode_frame(payload)
            handler = _DISPATCH.get(message["msg_type"])
            if handler is None:
                raise MalformedFrame("unknown_msg_type", message["msg_type"])
            handler(self, conn, message)
        except MalformedFrame as refused:
            self._refuse(conn.label, refused.kind, refused.msg_type)
        except Exception as exc:  # noqa: BLE001 - a sink bug must not cost the stream its connection
            self._sink_failed(exc)

    def on_refused(self, conn: Connection, kind: str) -> None:
        self._heard.add(conn)
        self._refuse(conn.label, kind, None)

    def on_closed(self, conn: Connection) -> None:
        if self._holding() and conn in self._media and not self._signaling_lost() and not self._server_stopping \
                and not self._close_requested:
            # Only a media socket, with signaling held: only that socket is redone (docs/STREAMS.md, case 3).
            self._media.remove(conn)
            self._last_heard.pop(conn, None)
            self._media_lost.add(conn.label)
            waiter = self._handshake_waiters.get(conn)
            if waiter is not None and not waiter.done():
                waiter.set_exception(_Transient(f"{conn.label} closed during handshake"))
                waiter.exception()
            self._start_repair(f"{conn.label}_closed")
            self._nudge_repair()
            return
        if conn is self._signaling or conn in self._media or conn in self._handshake_waiters:
            # One socket lost mid-handshake fails the whole attempt; once held, it starts a reconnect.
            for waiter in self._handshake_waiters.values():
                if not waiter.done():
                    waiter.set_exception(_Transient(f"{conn.label} closed during handshake"))
                    waiter.exception()  # its awaiter may be cancelled at the same moment: never warn
            self._wake(f"{conn.label}_closed")

    def _on_audio(self, conn: Connection, message: dict[str, Any]) -> None:
        user_id, user_name, timestamp, pcm = p.parse_binary_media(message)
        self.counters.audio_frames += 1
        self.counters.audio_bytes += len(pcm)
        self._sink_audio(user_id, user_name, timestamp, pcm)

    def _on_video(self, conn: Connection, message: dict[str, Any]) -> None:
        user_id, user_name, timestamp, data = p.parse_binary_media(message)
        self.counters.video_frames += 1
        self.counters.video_bytes += len(data)
        self._sink_video(user_id, user_name, timestamp, data)

    def _on_deskshare(self, conn: Connection, message: dict[str, Any]) -> None:
        user_id, user_name, timestamp, data = p.parse_binary_media(message)
        self.counters.deskshare_frames += 1
        self.counters.deskshare_bytes += len(data)
        self._sink_deskshare(user_id, user_name, timestamp, data)

    def _on_transcript(self, conn: Connection, message: dict[str, Any]) -> None:
        user_id, user_name, start, end, timestamp, language, text = p.parse_transcript(message)
        self.counters.transcript_frames += 1
        self.counters.transcript_bytes += len(text)
        self._sink_transcript(user_id, user_name, start, end, timestamp, language, text)

    def _on_chat(self, conn: Connection, message: dict[str, Any]) -> None:
        user_id, user_name, timestamp, text = p.parse_chat(message)
        self.counters.chat_frames += 1
        self.counters.chat_bytes += len(text)
        self._sink_chat(user_id, user_name, timestamp, text)

    def _on_keep_alive(self, conn: Connection, message: dict[str, Any]) -> None:
        timestamp, sequence = p.parse_keep_alive(message)
        conn.send(p.keep_alive_response(timestamp, sequence))
        self.counters.keepalives += 1

    def _on_event(self, conn: Connection, message: dict[str, Any]) -> None:
        event_type, event = p.parse_event(message)
        self.counters.events += 1
        if event_type == p.EventType.MEDIA_CONNECTION_INTERRUPTED:
            self._zoom_reports_media_interrupted("media_connection_interrupted", event.get("timestamp"))
        self._sink.on_event(event_type, event)

    def _on_stream_state(self, conn: Connection, message: dict[str, Any]) -> None:
        state, reason = p.parse_state_update(message)
        self.stream_state = state
        if reason is not None and state in (StreamState.TERMINATING, StreamState.TERMINATED):
            self._stop_reason = reason
        self._log("stream_state", state=_name(StreamState, state), reason=_name(p.StopReason, reason))
        self._sink.on_state(state, None, reason)
        if message["msg_type"] == MsgType.STREAM_STATE_RESP and self._probe is not None:
            self._probe.cancel()  # the signaling socket answers: Zoom's interruption was an older one
            self._probe = None
        if state == StreamState.INTERRUPTED and reason == p.StopReason.DATA_CONNECTION_INTERRUPTED:
            self._zoom_reports_media_interrupted("stream_interrupted_data_connection", message.get("timestamp"))
        elif state == StreamState.TERMINATING:
            self._server_stopping = True
        elif state == StreamState.TERMINATED:
            self._server_stopping = True
            self._wake("terminated")

    def _on_session_state(self, conn: Connection, message: dict[str, Any]) -> None:
        state, reason = p.parse_state_update(message)
        session_id = message.get("rtms_session_id")
        if type(session_id) is str:
            self.session_id = session_id
        self.session_state = state
        self._log("session_state", state=_name(SessionState, state), reason=_name(p.StopReason, reason))
        self._sink.on_state(None, state, reason)
        if state == SessionState.STOPPED:
            # The server closes the sockets next; that close ends the stream instead of a reconnect.
            if reason is not None:
                self._stop_reason = reason
            self._server_stopping = True
        elif state == SessionState.STARTED:
            self._server_stopping = False

    def _on_handshake_response(self, conn: Connection, message: dict[str, Any]) -> None:
        p.parse_status(message)  # refuses a response without an int status_code
        waiter = self._handshake_waiters.get(conn)
        if waiter is None or waiter.done():
            raise MalformedFrame("unexpected_handshake_response", message["msg_type"])
        waiter.set_result(message)

    def _on_close_response(self, conn: Connection, message: dict[str, Any]) -> None:
        status, reason = p.parse_status(message)
        self._log("stream_close_response", status=status, reason=reason)
        if status == Status.OK:
            self._server_stopping = True
            if self._stop_reason is None:
                self._stop_reason = _STOP_BY_US

    def _on_ignored(self, conn: Connection, message: dict[str, Any]) -> None:
        pass

    # -----------------------------------------------------------------------------------------------------------
    # Logging (structured, one line per event, rate-limited for per-frame problems)

    def _refuse(self, socket: str, kind: str, msg_type: int | None) -> None:
        self.counters.malformed += 1
        self._malformed_unlogged += 1
        now = _now()
        if now - self._malformed_logged_at >= _MALFORMED_LOG_INTERVAL:
            self._log("frame_refused", level=logging.WARNING, socket=socket, kind=kind, msg_type=msg_type,
                      refused_since_last_log=self._malformed_unlogged, refused_total=self.counters.malformed)
            self._malformed_logged_at = now
            self._malformed_unlogged = 0

    def _sink_failed(self, exc: Exception) -> None:
        self.counters.sink_errors += 1
        now = _now()
        if now - self._sink_errors_logged_at >= _MALFORMED_LOG_INTERVAL:
            self._sink_errors_logged_at = now
            log.error("event=sink_failed meeting_uuid=%s rtms_stream_id=%s error=%s errors_total=%d",
                      self.meeting_uuid, self.rtms_stream_id, type(exc).__name__, self.counters.sink_errors,
                      exc_info=exc)

    def _notify_phase(self, phase: Phase, detail: str) -> None:
        try:
            self._sink.on_connection(phase, detail)
        except Exception as exc:  # noqa: BLE001 - a sink bug must not cost the stream its connection
            self._sink_failed(exc)

    def _log(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        if not log.isEnabledFor(level):
            return
        extra = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None and value != "")
        log.log(level, "event=%s meeting_uuid=%s rtms_stream_id=%s %s", event, self.meeting_uuid,
                self.rtms_stream_id, extra)


_DISPATCH: dict[int, Callable[[StreamClient, Connection, dict[str, Any]], None]] = {
    # Only the audio frames on_text's fast path leaves: malformed ones (refused here, the field named), a data: URL
    # prefix, integers wider than int64.
    MsgType.MEDIA_DATA_AUDIO: StreamClient._on_audio,
    MsgType.MEDIA_DATA_VIDEO: StreamClient._on_video,
    MsgType.MEDIA_DATA_SHARE: StreamClient._on_deskshare,
    MsgType.MEDIA_DATA_TRANSCRIPT: StreamClient._on_transcript,
    MsgType.MEDIA_DATA_CHAT: StreamClient._on_chat,
    MsgType.KEEP_ALIVE_REQ: StreamClient._on_keep_alive,
    MsgType.EVENT_UPDATE: StreamClient._on_event,
    MsgType.STREAM_STATE_UPDATE: StreamClient._on_stream_state,
    MsgType.STREAM_STATE_RESP: StreamClient._on_stream_state,
    MsgType.SESSION_STATE_UPDATE: StreamClient._on_session_state,
    MsgType.SESSION_STATE_RESP: StreamClient._on_session_state,
    MsgType.SIGNALING_HAND_SHAKE_RESP: StreamClient._on_handshake_response,
    MsgType.DATA_HAND_SHAKE_RESP: StreamClient._on_handshake_response,
    MsgType.STREAM_CLOSE_RESP: StreamClient._on_close_response,
    MsgType.VIDEO_SUBSCRIPTION_RESP: StreamClient._on_ignored,
    MsgType.KEEP_ALIVE_RESP: StreamClient._on_ignored,
    # META_DATA_* formats are unconfirmed (docs/ZOOM.md §4.3): known and accepted, not used.
    **{meta: StreamClient._on_ignored for meta in range(MsgType.META_DATA_AUDIO, MsgType.META_DATA_CHAT + 1)},
}
# Plain int keys: a lookup with the int from orjson then needs no IntEnum hashing detour.
_DISPATCH = {int(key): value for key, value in _DISPATCH.items()}


def _discard_connection(connecting: asyncio.Future[Connection]) -> None:
    """Give up on a connect in flight; whenever it settles, drop the socket it made and swallow its error."""

    def settle(done: asyncio.Future[Connection]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result().abort()

    if connecting.done():
        settle(connecting)
    else:
        connecting.cancel()
        connecting.add_done_callback(settle)


def _backoff(timings: Timings, attempt: int) -> float:
    """Zoom's advice (docs/STREAMS.md): 3 s, doubling, at most 30 s; plus up to a tenth at random, so a thousand
    streams moved by one failure do not retry in step."""
    delay = min(timings.backoff_cap, timings.backoff_base * 2 ** attempt)
    return delay + random.uniform(0, delay / 10)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _name(enum_cls: type[enum.IntEnum], value: int | None) -> str | None:
    if value is None:
        return None
    try:
        return enum_cls(value).name
    except ValueError:
        return str(value)
