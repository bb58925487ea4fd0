"""Streams and what they store.

A `StreamSession` is one RTMS stream (keyed by Zoom's `rtms_stream_id`, so webhook retries upsert rather than
insert). Every state change goes through `rtms.services.change_state`, which also writes a `StreamTransition`
(the audit trail) and publishes after commit. Media rows are written in batches by `rtms.sinks`.
"""

from django.db import models

from rtms.client.protocol import StopReason


class StreamState(models.TextChoices):
    STARTING = "starting"
    ACTIVE = "active"
    PAUSED = "paused"
    INTERRUPTED = "interrupted"
    STOPPED = "stopped"


class StreamFailure(models.TextChoices):
    """Why we ended a stream ourselves, never connected or refused: stored as its stop_reason_name (stop_reason
    stays empty, it is Zoom's), so the console's live streams show it where Zoom's stop reasons appear."""

    APP_STREAM_LIMIT = "FAILED_APP_STREAM_LIMIT", "the app holds RTMS_MAX_STREAMS_PER_APP streams already"
    ACCOUNT_STREAM_LIMIT = "FAILED_ACCOUNT_STREAM_LIMIT", "the account holds RTMS_MAX_STREAMS_PER_ACCOUNT already"
    NOT_CONNECTED = "FAILED_NOT_CONNECTED", "not connected after RTMS_MAX_CONNECT_CLAIMS claims"
    SERVER_URL_NOT_ALLOWED = "FAILED_SERVER_URL_NOT_ALLOWED", "a server URL outside RTMS_ALLOWED_HOSTS"


# What a person reads for a stop reason (Zoom's RTMS_STOP_REASON, docs/ZOOM.md §5.3, or one of ours above): the console
# shows these instead of numbers or enum names.
ZOOM_STOP_LABELS = {
    StopReason.UNDEFINED: "No reason given",
    StopReason.HOST_TRIGGERED: "Stopped by the host",
    StopReason.USER_TRIGGERED: "Stopped by the app's user",
    StopReason.USER_LEFT: "The app's user left",
    StopReason.USER_EJECTED: "The app's user was removed from the meeting",
    StopReason.HOST_DISABLED_APP: "The host turned the app off",
    StopReason.MEETING_ENDED: "Meeting ended",
    StopReason.STREAM_CANCELED: "Stream canceled",
    StopReason.STREAM_REVOKED: "Access revoked",
    StopReason.ALL_APPS_DISABLED: "The host turned sharing with apps off",
    StopReason.INTERNAL_EXCEPTION: "Zoom internal error",
    StopReason.CONNECTION_TIMEOUT: "Connection timed out",
    StopReason.INSTANCE_CONNECTION_INTERRUPTED: "Meeting connection interrupted",
    StopReason.SIGNAL_CONNECTION_INTERRUPTED: "Signaling connection interrupted",
    StopReason.DATA_CONNECTION_INTERRUPTED: "Media connection interrupted",
    StopReason.SIGNAL_CONNECTION_CLOSED_ABNORMALLY: "Signaling connection closed abnormally",
    StopReason.DATA_CONNECTION_CLOSED_ABNORMALLY: "Media connection closed abnormally",
    StopReason.EXIT_SIGNAL: "Zoom's media server shut down",
    StopReason.AUTHENTICATION_FAILURE: "Zoom refused the app's credentials",
    StopReason.AWAIT_RECONNECTION_TIMEOUT: "No reconnection in time",
    StopReason.RECEIVER_REQUEST_CLOSE: "Closed at the app's request",
    StopReason.CUSTOMER_DISCONNECTED: "Customer disconnected",
    StopReason.AGENT_DISCONNECTED: "Agent disconnected",
    StopReason.ADMIN_DISABLED_APP: "An account admin turned the app off",
    StopReason.KEEP_ALIVE_TIMEOUT: "Keep-alive timed out",
    StopReason.MANUAL_API_TRIGGERED: "Stopped through Zoom's API",
    StopReason.STREAMING_NOT_SUPPORTED: "Streaming not supported",
}
FAILURE_LABELS = {
    StreamFailure.APP_STREAM_LIMIT: "Refused: the app's stream limit is reached",
    StreamFailure.ACCOUNT_STREAM_LIMIT: "Refused: the account's stream limit is reached",
    StreamFailure.NOT_CONNECTED: "Never connected to Zoom's media server",
    StreamFailure.SERVER_URL_NOT_ALLOWED: "Refused: Zoom's server address is not on the allow list",
}


def stop_reason_label(reason):
    """A stop reason as a person reads it: Zoom's code (6, "6") or name ("MEETING_ENDED") → "Meeting ended (6)", one
    of ours (FAILED_NOT_CONNECTED) → its sentence; "" for none, and anything unknown as it came."""
    if reason is None or reason == "":
        return ""
    if reason in FAILURE_LABELS:
        return FAILURE_LABELS[reason]
    text = str(reason)
    code = int(text) if text.isdigit() else StopReason.__members__.get(text, text.removeprefix("UNKNOWN_"))
    try:
        stop = StopReason(int(code))
    except ValueError:
        return f"Unknown reason ({code})" if str(code).isdigit() else text
    return f"{ZOOM_STOP_LABELS[stop]} ({stop.value})"


class DesiredState(models.TextChoices):
    RUNNING = "running"
    STOPPED = "stopped"


class StreamSession(models.Model):
    rtms_stream_id = models.CharField(max_length=64, unique=True)
    meeting_uuid = models.CharField(max_length=128, db_index=True)
    client_id = models.CharField(max_length=100, db_index=True, help_text="the Zoom app this stream belongs to")
    account_id = models.CharField(max_length=64, blank=True, db_index=True,
                                  help_text="the Zoom account whose stream limit this stream counts against")
    operator_id = models.CharField(max_length=100, blank=True, help_text="Zoom user id that started the stream")
    server_urls = models.TextField(blank=True)
    rtms_session_id = models.CharField(max_length=64, blank=True)
    desired_state = models.CharField(max_length=16, choices=DesiredState.choices, default=DesiredState.RUNNING)
    state = models.CharField(max_length=16, choices=StreamState.choices, default=StreamState.STARTING)
    stop_reason = models.IntegerField(null=True, blank=True, help_text="RTMS_STOP_REASON (docs/ZOOM.md §5.3)")
    stop_reason_name = models.CharField(max_length=64, blank=True)
    # Version of the published state: panels keep the highest they have seen.
    version = models.PositiveIntegerField(default=0)
    owner_worker = models.CharField(max_length=200, blank=True)
    lease_generation = models.PositiveBigIntegerField(default=0)
    audio_per_participant = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # Counters, added to in batches by the sinks.
    transcript_count = models.PositiveIntegerField(default=0)
    chat_count = models.PositiveIntegerField(default=0)
    audio_bytes = models.PositiveBigIntegerField(default=0)
    video_frames = models.PositiveIntegerField(default=0)
    deskshare_frames = models.PositiveIntegerField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    reconnects = models.PositiveIntegerField(default=0)
    # Claims won since the stream last connected: at RTMS_MAX_CONNECT_CLAIMS it fails instead of another claim.
    connect_claims = models.PositiveSmallIntegerField(default=0)
    media_deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["desired_state", "state"]),
            # The reconciler (rtms.tasks.reconcile), every 2 s: the streams that changed in the last hour.
            models.Index(fields=["updated"], name="stream_by_updated"),
            # The console's live streams, every 2 s of an open page: those stopped in the last 30 minutes, and those
            # not stopped, which every rtms_started also counts for the stream limits (services._over_stream_limit).
            models.Index(fields=["stopped_at"], name="stream_by_stopped_at"),
            models.Index(fields=["client_id"], name="stream_live", condition=~models.Q(state=StreamState.STOPPED)),
        ]

    def __str__(self):
        return f"stream {self.rtms_stream_id} ({self.state})"

    @property
    def is_live(self):
        return self.state != StreamState.STOPPED

    def snapshot(self):
        """The full state a live view needs (published with every change, never as a delta)."""
        return {
            "stream_id": self.rtms_stream_id,
            "meeting_uuid": self.meeting_uuid,
            "client_id": self.client_id,
            "operator_id": self.operator_id,
            "state": self.state,
            "desired_state": self.desired_state,
            "stop_reason": self.stop_reason,
            "stop_reason_name": self.stop_reason_name,
            "version": self.version,
            "owner_worker": self.owner_worker,
            "transcript_count": self.transcript_count,
            "chat_count": self.chat_count,
            "audio_bytes": self.audio_bytes,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
        }


class StreamTransition(models.Model):
    """Append-only audit trail of a stream's states."""

    stream = models.ForeignKey(StreamSession, on_delete=models.CASCADE, related_name="transitions")
    previous = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=16, choices=StreamState.choices)
    reason = models.CharField(max_length=200, blank=True)
    stop_reason = models.IntegerField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class TranscriptSegment(models.Model):
    stream = models.ForeignKey(StreamSession, on_delete=models.CASCADE, related_name="transcript")
    user_id = models.BigIntegerField()
    user_name = models.CharField(max_length=200, blank=True)
    start_time = models.BigIntegerField(help_text="ms since the epoch")
    end_time = models.BigIntegerField()
    timestamp = models.BigIntegerField()
    language = models.IntegerField(null=True, blank=True)
    text = models.TextField()

    class Meta:
        ordering = ["start_time", "id"]
        # A line replayed after a reconnect or a takeover is stored once.
        constraints = [
            models.UniqueConstraint(fields=["stream", "user_id", "start_time", "timestamp"], name="transcript_once")
        ]


class ChatMessage(models.Model):
    stream = models.ForeignKey(StreamSession, on_delete=models.CASCADE, related_name="chat")
    user_id = models.BigIntegerField(null=True, blank=True)
    user_name = models.CharField(max_length=200, blank=True)
    timestamp = models.BigIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["timestamp", "id"]


class ParticipantEvent(models.Model):
    """RTMS EVENT_UPDATE entries: joins, leaves, speaker changes, sharing, video on/off."""

    class Kind(models.TextChoices):
        FIRST_PACKET = "first_packet"
        ACTIVE_SPEAKER = "active_speaker"
        JOIN = "join"
        LEAVE = "leave"
        SHARING_START = "sharing_start"
        SHARING_STOP = "sharing_stop"
        MEDIA_INTERRUPTED = "media_interrupted"
        VIDEO_ON = "video_on"
        VIDEO_OFF = "video_off"
        OTHER = "other"

    stream = models.ForeignKey(StreamSession, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    event_type = models.IntegerField()
    user_id = models.BigIntegerField(null=True, blank=True)
    user_name = models.CharField(max_length=200, blank=True)
    timestamp = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]


class MediaFile(models.Model):
    """One segment of a stream's media (a WAV, or a directory of frames), with what it holds: the index of a
    stream's media across every holder (rtms/sinks.py StreamFiles)."""

    class Kind(models.TextChoices):
        AUDIO_MIXED = "audio_mixed"
        AUDIO_PARTICIPANT = "audio_participant"
        VIDEO = "video"
        DESKSHARE = "deskshare"

    stream = models.ForeignKey(StreamSession, on_delete=models.CASCADE, related_name="media_files")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    user_id = models.BigIntegerField(null=True, blank=True)
    # Its storage key (rtms/storage.py; under MEDIA_ROOT for the local backend). Video/deskshare: a prefix of
    # frames plus `index.jsonl` (one line per frame).
    path = models.CharField(max_length=500)
    stored = models.BooleanField(default=False, help_text="uploaded to storage; false while in a worker's spool")
    node = models.CharField(max_length=200, blank=True, help_text="the worker process that wrote it")
    sample_rate = models.PositiveIntegerField(null=True, blank=True)
    channels = models.PositiveSmallIntegerField(null=True, blank=True)
    bytes = models.PositiveBigIntegerField(default=0)
    frames = models.PositiveIntegerField(default=0)
    first_timestamp = models.BigIntegerField(null=True, blank=True)
    last_timestamp = models.BigIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["stream", "path"], name="media_file_once")]
