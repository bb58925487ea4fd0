"""Media sinks: what the RTMS client delivers is buffered per stream on the event loop (appends only), then the
session host writes it in batches, once per tick of its loop (rtms/client/pacing.py, 0.08 s), from two threads:
files (audio every tick, so a crash loses at most that much; WAV headers and the media index every
INDEX_INTERVAL) and database rows (transcript, chat, events: one transaction for every stream's new rows).
Never one database write per 20 ms frame.

When PostgreSQL is unreachable the row batches are kept and retried in order; nothing is dropped. Audio
replayed by Zoom after a reconnect (original timestamps) is written once: a frame not newer than the last one
stored for that participant is skipped.
"""

import logging
import time

from django.db import connection, transaction

from rtms import media, metrics, signals
from rtms.client import StreamSink
from rtms.client.protocol import EventType
from rtms.models import ChatMessage, MediaFile, ParticipantEvent, StreamSession, TranscriptSegment

log = logging.getLogger("rtms.sinks")

INDEX_INTERVAL = 5.0  # WAV headers, the media index and the per-stream figures; audio itself goes out every tick
MAX_ROWS_PER_TRANSACTION = 5000

EVENT_KINDS = {
    EventType.FIRST_PACKET_TIMESTAMP: ParticipantEvent.Kind.FIRST_PACKET,
    EventType.ACTIVE_SPEAKER_CHANGE: ParticipantEvent.Kind.ACTIVE_SPEAKER,
    EventType.PARTICIPANT_JOIN: ParticipantEvent.Kind.JOIN,
    EventType.PARTICIPANT_LEAVE: ParticipantEvent.Kind.LEAVE,
    EventType.SHARING_START: ParticipantEvent.Kind.SHARING_START,
    EventType.SHARING_STOP: ParticipantEvent.Kind.SHARING_STOP,
    EventType.MEDIA_CONNECTION_INTERRUPTED: ParticipantEvent.Kind.MEDIA_INTERRUPTED,
    EventType.PARTICIPANT_VIDEO_ON: ParticipantEvent.Kind.VIDEO_ON,
    EventType.PARTICIPANT_VIDEO_OFF: ParticipantEvent.Kind.VIDEO_OFF,
}


def _now_ms():
    return time.time() * 1000


def _int_or_none(value):
    return value if type(value) is int and -2**63 < value < 2**63 else None


def _fits(*numbers, bits=64):
    """Every number fits its column (BIGINT, or INTEGER with bits=32; None allowed): a frame that does not is
    refused, not stored."""
    limit = 2 ** (bits - 1)
    return all(n is None or -limit < n < limit for n in numbers)


def _storable(text):
    """PostgreSQL text holds neither NUL nor lone surrogates: replace them rather than lose the whole line."""
    if not text:
        return ""
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


class StreamStore(StreamSink):
    """One stream's buffers. Called on the event loop for each message: appends only, no I/O."""

    __slots__ = ("stream_pk", "stream_id", "per_participant", "_state_callback", "_connection_callback", "audio",
                 "last_audio_ts", "frames", "transcripts", "chats", "events", "replayed_frames", "refused_frames",
                 "discarded")

    def __init__(self, stream_pk, stream_id, per_participant_audio=False, on_state=None, on_connection=None):
        self.stream_pk = stream_pk
        self.stream_id = stream_id
        self.per_participant = per_participant_audio
        self._state_callback = on_state
        self._connection_callback = on_connection
        self.audio = {}           # key (0 = mixed, else user id) -> [[pcm, ...], first_ts, last_ts]
        self.last_audio_ts = {}   # key -> timestamp of the newest frame accepted (replays are skipped)
        self.frames = []          # (kind, user_id, timestamp, data)
        self.transcripts = []
        self.chats = []
        self.events = []
        self.replayed_frames = 0
        self.refused_frames = 0
        self.discarded = False

    # StreamSink ------------------------------------------------------------------------------------------------

    def on_audio(self, user_id, user_name, timestamp_ms, pcm):
        key = user_id if self.per_participant else 0
        if timestamp_ms <= self.last_audio_ts.get(key, -1):
            self.replayed_frames += 1
            return
        self.last_audio_ts[key] = timestamp_ms
        buffer = self.audio.get(key)
        if buffer is None:
            self.audio[key] = [[pcm], timestamp_ms, timestamp_ms]
        else:  # the frames are kept as received (no copy) and written with one writev per flush
            buffer[0].append(pcm)
            buffer[2] = timestamp_ms

    def on_video(self, user_id, user_name, timestamp_ms, data):
        self.frames.append((MediaFile.Kind.VIDEO, user_id, timestamp_ms, data))

    def on_deskshare(self, user_id, user_name, timestamp_ms, data):
        self.frames.append((MediaFile.Kind.DESKSHARE, user_id, timestamp_ms, data))

    def on_transcript(self, user_id, user_name, start_ms, end_ms, timestamp_ms, language, text):
        if not _fits(user_id, start_ms, end_ms, timestamp_ms) or not _fits(language, bits=32):
            self.refused_frames += 1
            return
        self.transcripts.append((user_id, _storable(user_name)[:200], start_ms, end_ms, timestamp_ms, language,
                                 _storable(text)))

    def on_chat(self, user_id, user_name, timestamp_ms, text):
        if not _fits(user_id, timestamp_ms):
            self.refused_frames += 1
            return
        self.chats.append((user_id, _storable(user_name)[:200], timestamp_ms, _storable(text)))

    def on_event(self, event_type, event):
        if not _fits(event_type, bits=32):
            self.refused_frames += 1
            return
        kind = EVENT_KINDS.get(event_type, ParticipantEvent.Kind.OTHER)
        timestamp = _int_or_none(event.get("timestamp"))
        people = event.get("participants")
        if isinstance(people, list) and people:
            for person in people:
                if isinstance(person, dict):
                    self.events.append((kind, event_type, _int_or_none(person.get("user_id")),
                                        _storable(str(person.get("user_name") or ""))[:200], timestamp))
        else:
            self.events.append((kind, event_type, _int_or_none(event.get("user_id")),
                                _storable(str(event.get("user_name") or ""))[:200], timestamp))

    def on_state(self, stream_state, session_state, reason):
        if self._state_callback:
            self._state_callback(stream_state, session_state, reason)

    def on_connection(self, phase, detail):
        if self._connection_callback:
            self._connection_callback(phase, detail)

    # Taking batches (on the loop) ------------------------------------------------------------------------------

    def take_media(self):
        audio, frames = self.audio, self.frames
        self.audio, self.frames = {}, []
        return audio, frames

    def take_rows(self):
        rows = (self.transcripts, self.chats, self.events)
        self.transcripts, self.chats, self.events = [], [], []
        return rows

    def discard(self):
        """STREAM_REVOKED: whatever is buffered must never be written."""
        self.discarded = True
        self.audio, self.frames = {}, []
        self.transcripts, self.chats, self.events = [], [], []


class StreamFiles:
    """The open files of one stream (file thread only)."""

    __slots__ = ("stream_pk", "stream_id", "wavs", "frame_dirs", "last_ts", "first_ts", "audio_frames",
                 "last_lag_ms")

    def __init__(self, stream_pk, stream_id):
        self.stream_pk = stream_pk
        self.stream_id = stream_id
        self.wavs = {}      # key -> WavFile
        self.frame_dirs = {}
        self.last_ts = {}   # (kind, key) -> newest timestamp written
        self.first_ts = {}  # (kind, key) -> oldest timestamp written by this process
        self.audio_frames = {}  # key -> audio frames written by this process
        self.last_lag_ms = None  # send→store lag of the newest frame written

    def wav(self, key):
        wav = self.wavs.get(key)
        if wav is None:
            name = "mixed.wav" if key == 0 else f"user-{key}.wav"
            wav = self.wavs[key] = media.WavFile(media.stream_dir(self.stream_id) / "audio" / name)
        return wav

    def frame_dir(self, kind):
        directory = self.frame_dirs.get(kind)
        if directory is None:
            directory = self.frame_dirs[kind] = media.FrameDir(media.stream_dir(self.stream_id) / kind)
        return directory

    def index_rows(self):
        for key, wav in self.wavs.items():
            kind = MediaFile.Kind.AUDIO_MIXED if key == 0 else MediaFile.Kind.AUDIO_PARTICIPANT
            yield dict(kind=kind, user_id=key or None, path=media.relative(wav.path), sample_rate=wav.sample_rate,
                       channels=wav.channels, bytes=wav.data_bytes, frames=wav.data_bytes // 640,
                       first_timestamp=self.first_ts.get(("audio", key)), last_timestamp=self.last_ts.get(("audio", key)))
        for kind, directory in self.frame_dirs.items():
            yield dict(kind=kind, user_id=None, path=media.relative(directory.path), sample_rate=None,
                       channels=None, bytes=directory.bytes, frames=directory.frames,
                       first_timestamp=self.first_ts.get((kind, None)), last_timestamp=self.last_ts.get((kind, None)))

    def sync(self):
        for wav in self.wavs.values():
            wav.sync_header()
        for directory in self.frame_dirs.values():
            directory.sync()

    def close(self):
        for wav in self.wavs.values():
            wav.close()
        for directory in self.frame_dirs.values():
            directory.close()


def write_media(files, audio, frames):
    """File thread: append a stream's audio and frames; record the send→store lag of what was written."""
    for key, (chunks, first_ts, last_ts) in audio.items():
        count = len(chunks)
        files.wav(key).append(chunks)
        files.first_ts.setdefault(("audio", key), first_ts)
        files.last_ts[("audio", key)] = last_ts
        files.audio_frames[key] = files.audio_frames.get(key, 0) + count
        now = _now_ms()
        metrics.store_lag.record(now, first_ts, last_ts, count)
        files.last_lag_ms = now - last_ts
    for kind, user_id, timestamp, data in frames:
        files.frame_dir(kind).add(timestamp, user_id, data)
        files.first_ts.setdefault((kind, None), timestamp)
        files.last_ts[(kind, None)] = timestamp
        metrics.store_lag.record(_now_ms(), timestamp, timestamp, 1)


# What a later index write refreshes; first_timestamp is left as its creator wrote it (a takeover continues a
# file it did not start).
_INDEX_UPDATED = ["kind", "user_id", "sample_rate", "channels", "bytes", "frames", "last_timestamp", "updated"]


def write_index(streams_index):
    """Database thread: the media index and the streams' media counters, from the files' own figures
    (absolute values, so a takeover or a retried write never double counts). Two statements for every stream
    held, however many: it runs every INDEX_INTERVAL for all of them."""
    index, totals = [], []
    for stream_pk, rows in streams_index:
        audio_bytes = video_frames = deskshare_frames = 0
        for row in rows:
            index.append(MediaFile(stream_id=stream_pk, **row))
            if row["kind"] == MediaFile.Kind.VIDEO:
                video_frames += row["frames"]
            elif row["kind"] == MediaFile.Kind.DESKSHARE:
                deskshare_frames += row["frames"]
            else:
                audio_bytes += row["bytes"]
        totals.append((stream_pk, audio_bytes, video_frames, deskshare_frames))
    if not totals:
        return
    with transaction.atomic():
        if index:
            MediaFile.objects.bulk_create(index, update_conflicts=True, unique_fields=["stream", "path"],
                                          update_fields=_INDEX_UPDATED)
        _update_streams(("audio_bytes", "video_frames", "deskshare_frames"), totals)


def _update_streams(columns, rows, add=False):
    """One UPDATE for many streams: `rows` are (stream pk, a value per column); the values replace the
    columns, or are added to them with `add`. Plain SQL with CASE, so it runs on PostgreSQL and SQLite alike:
    compiling Django's Case/When for a thousand streams was ~14% of a busy worker's CPU (py-spy)."""
    quote = connection.ops.quote_name
    whens = " ".join(["WHEN %s THEN %s"] * len(rows))
    assignments, params = [], []
    for position, column in enumerate(columns, start=1):
        value = f"CASE {quote('id')} {whens} ELSE 0 END"
        assignments.append(f"{quote(column)} = {quote(column) + ' + ' if add else ''}{value}")
        params.extend(item for row in rows for item in (row[0], row[position]))
    pks = [row[0] for row in rows]
    sql = (f"UPDATE {quote(StreamSession._meta.db_table)} SET {', '.join(assignments)} "
           f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(pks))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, params + pks)


class RowBatch:
    """New rows of one stream, kept until they are committed."""

    __slots__ = ("stream_pk", "stream_id", "transcripts", "chats", "events")

    def __init__(self, stream_pk, stream_id, transcripts, chats, events):
        self.stream_pk, self.stream_id = stream_pk, stream_id
        self.transcripts, self.chats, self.events = transcripts, chats, events


def write_rows(batches):
    """Database thread: every pending batch in one transaction. Raises when the database is unreachable;
    the caller keeps the batches and retries. The new lines are announced after commit."""
    with transaction.atomic():
        transcripts, chats, events = [], [], []
        per_stream = {}
        for batch in batches:
            segments = [
                TranscriptSegment(stream_id=batch.stream_pk, user_id=user_id, user_name=name[:200], start_time=start,
                                  end_time=end, timestamp=ts, language=language, text=text)
                for user_id, name, start, end, ts, language, text in batch.transcripts
            ]
            transcripts.extend(segments)
            chats.extend(ChatMessage(stream_id=batch.stream_pk, user_id=user_id, user_name=name[:200],
                                     timestamp=ts, text=text) for user_id, name, ts, text in batch.chats)
            events.extend(ParticipantEvent(stream_id=batch.stream_pk, kind=kind, event_type=event_type,
                                           user_id=user_id, user_name=name, timestamp=ts)
                          for kind, event_type, user_id, name, ts in batch.events)
            counts = per_stream.setdefault(batch.stream_pk, [batch.stream_id, [], 0, 0])
            counts[1].extend(segments)
            counts[2] += len(batch.chats)
            counts[3] += len(batch.events)
        TranscriptSegment.objects.bulk_create(transcripts, ignore_conflicts=True)
        ChatMessage.objects.bulk_create(chats)
        ParticipantEvent.objects.bulk_create(events)
        _update_streams(("transcript_count", "chat_count", "event_count"), [
            (stream_pk, len(segments), chat_count, event_count)
            for stream_pk, (_, segments, chat_count, event_count) in per_stream.items()], add=True)
        transaction.on_commit(lambda: _announce_transcripts(per_stream))
    committed_at = _now_ms()
    for segment in transcripts:
        metrics.store_lag.record(committed_at, segment.timestamp, segment.timestamp, 1)


def _announce_transcripts(per_stream):
    """One query and one signal for every stream with new lines."""
    with_lines = {stream_pk: segments for stream_pk, (_, segments, _, _) in per_stream.items() if segments}
    if not with_lines:
        return
    streams = StreamSession.objects.in_bulk(list(with_lines))
    announced = [(streams[pk], segments) for pk, segments in with_lines.items() if pk in streams]
    signals.transcript_received.send_robust(sender=StreamSession, streams=announced)


def split_batches(batches):
    """Keep a transaction bounded when a long outage piled up rows."""
    chunk, size = [], 0
    for batch in batches:
        chunk.append(batch)
        size += len(batch.transcripts) + len(batch.chats) + len(batch.events)
        if size >= MAX_ROWS_PER_TRANSACTION:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk
