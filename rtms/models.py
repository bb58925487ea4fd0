"""Streams and what they store.

A `StreamSession` is one RTMS stream (keyed by Zoom's `rtms_stream_id`, so webhook retries upsert rather than
insert). Every state change goes through `rtms.services.change_state`, which also writes a `StreamTransition`
(the audit trail) and publishes after commit. Media rows are written in batches by `rtms.sinks`.
"""

from django.db import models


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
    stop_reason = models.IntegerField(null=True, blank=True, help_text="RTMS_STOP_REASON (reference §5.3)")
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
        indexes = [models.Index(fields=["desired_state", "state"])]

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
    """One stored media file (WAV) or frame directory, with what it holds; the index of a stream's media."""

    class Kind(models.TextChoices):
        AUDIO_MIXED = "audio_mixed"
        AUDIO_PARTICIPANT = "audio_participant"
        VIDEO = "video"
        DESKSHARE = "deskshare"

    stream = models.ForeignKey(StreamSession, on_delete=models.CASCADE, related_name="media_files")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    user_id = models.BigIntegerField(null=True, blank=True)
    # Relative to MEDIA_ROOT. Video/deskshare: a directory of frames plus `index.jsonl` (one line per frame).
    path = models.CharField(max_length=500)
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
