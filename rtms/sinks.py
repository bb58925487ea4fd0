"""Media sinks: what the RTMS client delivers is buffered per stream on the event loop (appends only), then the
session host writes it in batches, once per tick of its loop (rtms/client/pacing.py: 0.02 s while the process
is lightly loaded, up to 0.08 s when it is busy), from two threads:
files (audio every tick into the process's spool, every other tick near saturation, so a crash loses
at most that much; WAV headers and the media index every INDEX_INTERVAL; segments uploaded to storage every
RTMS_SEGMENT_SECONDS) and database rows (transcript, chat, events: one transaction for every stream's new rows).
Never one database write per 20 ms frame.

When PostgreSQL is unreachable the row batches are kept and retried in order; nothing is dropped. Audio
replayed by Zoom after a reconnect (original timestamps) is written once: a frame not newer than the last one
stored for that participant is skipped. Audio keeps Zoom's timeline: where Zoom sent nothing for a while (nobody
spoke, a participant muted), the segment holds that much silence (docs/STREAMS.md, "Audio keeps Zoom's timeline").
"""

import logging
import shutil
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction

from rtms import media, metrics, signals, spool
from rtms.client import StreamSink
from rtms.client.protocol import EventType
from rtms.models import ChatMessage, MediaFile, ParticipantEvent, StreamSession, TranscriptSegment
from rtms.storage import storage

log = logging.getLogger("rtms.sinks")

INDEX_INTERVAL = 5.0  # WAV headers, the media index and the per-stream figures; audio goes out every tick or two
MAX_ROWS_PER_TRANSACTION = 5000
PCM_BYTES_PER_MS = 32  # L16, 16 kHz, mono: the only audio the client asks Zoom for (rtms/client/protocol.py)
FRAME_BYTES = 20 * PCM_BYTES_PER_MS  # the 20 ms frame the client asks for

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

    __slots__ = ("stream_pk", "stream_id", "client_id", "per_participant", "_state_callback", "_connection_callback",
                 "audio", "last_audio_ts", "frames", "transcripts", "chats", "events", "replayed_frames",
                 "discarded")

    def __init__(self, stream_pk, stream_id, client_id, per_participant_audio=False, on_state=None,
                 on_connection=None):
        self.stream_pk = stream_pk
        self.stream_id = stream_id
        self.client_id = client_id  # the app holding the stream: its new lines are announced to that app only
        self.per_participant = per_participant_audio
        self._state_callback = on_state
        self._connection_callback = on_connection
        # key (0 = mixed, else user id) -> [[pcm, ...], first_ts, last_ts, gaps, due_by]: `gaps` None, or a
        # (chunk index, its timestamp, the timestamp before it) where a frame came after a gap; `due_by` the latest
        # timestamp at which the next frame is on time (the last one's end plus media.JITTER_MS).
        self.audio = {}
        self.last_audio_ts = {}   # key -> timestamp of the newest frame accepted (replays are skipped)
        self.frames = []          # (kind, user_id, timestamp, data)
        self.transcripts = []
        self.chats = []
        self.events = []
        self.replayed_frames = 0
        self.discarded = False

    # StreamSink ------------------------------------------------------------------------------------------------

    def on_audio(self, user_id, user_name, timestamp_ms, pcm):
        key = user_id if self.per_participant else 0
        if timestamp_ms <= self.last_audio_ts.get(key, -1):
            self.replayed_frames += 1
            return
        self.last_audio_ts[key] = timestamp_ms
        due_by = timestamp_ms + len(pcm) // PCM_BYTES_PER_MS + media.JITTER_MS
        buffer = self.audio.get(key)
        if buffer is None:
            self.audio[key] = [[pcm], timestamp_ms, timestamp_ms, None, due_by]
            return
        if timestamp_ms > buffer[4]:  # Zoom sent nothing for a while: the file thread writes the gap's silence
            if buffer[3] is None:
                buffer[3] = []
            buffer[3].append((len(buffer[0]), timestamp_ms, buffer[2]))
        buffer[0].append(pcm)  # the frames are kept as received (no copy) and written with one writev per flush
        buffer[2] = timestamp_ms
        buffer[4] = due_by

    def on_video(self, user_id, user_name, timestamp_ms, data):
        self.frames.append((MediaFile.Kind.VIDEO, user_id, timestamp_ms, data))

    def on_deskshare(self, user_id, user_name, timestamp_ms, data):
        self.frames.append((MediaFile.Kind.DESKSHARE, user_id, timestamp_ms, data))

    def on_transcript(self, user_id, user_name, start_ms, end_ms, timestamp_ms, language, text):
        self.transcripts.append((user_id, _storable(user_name)[:200], start_ms, end_ms, timestamp_ms, language,
                                 _storable(text)))

    def on_chat(self, user_id, user_name, timestamp_ms, text):
        self.chats.append((user_id, _storable(user_name)[:200], timestamp_ms, _storable(text)))

    def on_event(self, event_type, event):
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
        """The rows buffered since the last call as a RowBatch, or None: most ticks bring none (a transcript line
        every few seconds), and the host asks every stream every tick."""
        if not (self.transcripts or self.chats or self.events):
            return None
        batch = RowBatch(self.stream_pk, self.stream_id, self.client_id, self.transcripts, self.chats, self.events)
        self.transcripts, self.chats, self.events = [], [], []
        return batch

    def discard(self):
        """STREAM_REVOKED: whatever is buffered must never be written."""
        self.discarded = True
        self.audio, self.frames = {}, []
        self.transcripts, self.chats, self.events = [], [], []


class StreamFiles:
    """One holder's open segments of one stream, in this process's spool (file thread only). Every
    RTMS_SEGMENT_SECONDS, at the end and at a handover, `roll` closes them and uploads them to storage
    (rtms/storage.py), so any node reads them and the next holder starts segments of its own."""

    __slots__ = ("stream_pk", "stream_id", "generation", "spool", "node", "wavs", "ended_wavs", "frame_dirs", "done",
                 "segment_started", "last_lag_ms", "uploads", "uploaded", "failed_uploads")

    def __init__(self, stream_pk, stream_id, generation, spool, node="", stagger=0.0, failed_uploads=None):
        """`stagger`: seconds the first segment is shortened by, so that streams held from the same moment (a
        worker's start, a takeover) do not all close and upload their segments in the same tick.
        `failed_uploads`: the process's FailedUploads, where a segment that fails to upload is tried again."""
        self.failed_uploads = failed_uploads
        self.stream_pk = stream_pk
        self.stream_id = stream_id
        self.generation = generation  # the lease generation: segments of two holders never share a name
        self.spool = Path(spool).resolve()  # once: every index write names each segment by its path under it
        self.node = node
        self.wavs = {}      # key (0 = mixed, else user id) -> WavFile of the open segment
        self.ended_wavs = []  # (key, WavFile) of segments a gap longer than a segment ended: rolled with the others
        self.frame_dirs = {}  # kind -> FrameDir of the open segment
        # storage key -> index row of a segment this holder closed, until a committed index says it is stored
        # (then it is in the database for good, and writing it every INDEX_INTERVAL again cost a row per segment
        # of the meeting so far: docs/STREAMS.md). Written by the file thread, emptied by the state thread:
        # single-key operations only.
        self.done = {}
        self.uploads = []   # uploads of closed segments possibly still running on the upload pool
        self.uploaded = set()  # keys uploaded but still in the spool: they leave it once indexed as stored
        self.segment_started = time.monotonic() - stagger
        self.last_lag_ms = None  # send→store lag of the newest frame written

    def _dir(self):
        return media.stream_dir(self.stream_id, root=self.spool)

    def key_of(self, path):
        """The storage key of a spooled file: its path under the spool (`rtms/<stream id>/...`)."""
        return Path(path).relative_to(self.spool).as_posix()

    def append_audio(self, key, chunks, first_ts, last_ts):
        """Append frames Zoom sent back to back, from `first_ts` to `last_ts`, to the open segment of `key`, after
        the silence of the gap since its last frame; a frame with no open segment starts one. A gap longer than a
        segment (RTMS_SEGMENT_SECONDS) ends the segment instead, so no write is ever more than a segment of
        silence (a timestamp far in the future included): each segment is named and indexed by its first
        timestamp, which places it on the timeline (docs/STREAMS.md, "Audio keeps Zoom's timeline")."""
        wav = self.wavs.get(key)
        if wav is None:
            wav = self._new_wav(key, first_ts)
        else:
            silence = wav.silence_before(first_ts)
            if silence > settings.RTMS_SEGMENT_SECONDS * 1000 * PCM_BYTES_PER_MS:
                wav.close()
                self.ended_wavs.append((key, wav))
                wav = self._new_wav(key, first_ts)
            elif silence:
                wav.append_silence(silence)
        wav.append(chunks, first_ts, last_ts)

    def _new_wav(self, key, first_ts):
        who = "mixed" if key == 0 else f"user-{int(key)}"
        name = f"{who}-{int(first_ts)}-g{self.generation}.wav"
        wav = self.wavs[key] = media.WavFile(self._dir() / "audio" / name)
        return wav

    def frame_dir(self, kind, first_ts):
        directory = self.frame_dirs.get(kind)
        if directory is None:
            directory = self.frame_dirs[kind] = media.FrameDir(
                self._dir() / f"{kind}-{int(first_ts)}-g{self.generation}")
        return directory

    def _open_rows(self, stored):
        for key, wav in [*self.ended_wavs, *self.wavs.items()]:
            kind = MediaFile.Kind.AUDIO_MIXED if key == 0 else MediaFile.Kind.AUDIO_PARTICIPANT
            yield dict(kind=kind, user_id=key or None, path=self.key_of(wav.path), sample_rate=wav.sample_rate,
                       channels=wav.channels, bytes=wav.data_bytes, frames=wav.frames,
                       first_timestamp=wav.first_timestamp, last_timestamp=wav.last_timestamp, stored=stored,
                       node=self.node)
        for kind, directory in self.frame_dirs.items():
            yield dict(kind=kind, user_id=None, path=self.key_of(directory.path), sample_rate=None,
                       channels=None, bytes=directory.bytes, frames=directory.frames,
                       first_timestamp=directory.first_timestamp, last_timestamp=directory.last_timestamp,
                       stored=stored, node=self.node)

    def index_rows(self):
        """Every segment of this holder not yet indexed as stored: the closed ones (uploaded or uploading) and
        the open ones (still in the spool)."""
        yield from list(self.done.values())
        yield from self._open_rows(stored=False)

    def segment_due(self, segment_seconds):
        return time.monotonic() - self.segment_started >= segment_seconds and (self.wavs or self.frame_dirs)

    def sync(self):
        for wav in self.wavs.values():
            wav.sync_header()
        for directory in self.frame_dirs.values():
            directory.sync()

    def roll(self, upload=True, uploader=None):
        """Close the open segments and upload them: on `uploader` (an executor; returns the futures) or here
        (`upload=False`: STREAM_REVOKED, they are deleted instead). A segment that fails to upload stays in the
        spool, indexed as not stored, and is tried again (FailedUploads; `recover_spool` once its process died)."""
        rows = list(self._open_rows(stored=False))
        wavs = [wav for _, wav in self.ended_wavs] + list(self.wavs.values())
        paths = [wav.path for wav in wavs] + [d.path for d in self.frame_dirs.values()]
        for wav in wavs:
            wav.close()
        for directory in self.frame_dirs.values():
            directory.close()
        self.wavs, self.ended_wavs, self.frame_dirs = {}, [], {}
        self.segment_started = time.monotonic()
        if not upload:
            for path in paths:
                _remove(path)
            return []
        for row in rows:
            self.done[row["path"]] = row
        if uploader is None:
            for row, path in zip(rows, paths):
                self._upload(row, path)
            return []
        started = [uploader.submit(self._upload, row, path) for row, path in zip(rows, paths)]
        self.uploads = [upload for upload in self.uploads if not upload.done()] + started
        return started

    def _upload(self, row, path):
        try:
            stored = _upload(self, path)
        except Exception as exc:  # noqa: BLE001 - kept in the spool; indexed as not stored
            metrics.sink_write_failures.labels(what="upload").inc()
            log.error("segment not uploaded, kept in the spool", extra={"stream": self.stream_id,
                                                                        "key": row["path"], "error": repr(exc)})
            if self.failed_uploads is not None:
                self.failed_uploads.add(self, row, path)
        else:
            if stored:
                self.uploaded_as(row)
            else:  # erased meanwhile
                _remove(path)

    def uploaded_as(self, row):
        """The segment of `row` is in storage: the next index write says stored, and then it leaves the spool."""
        self.uploaded.add(row["path"])
        row["stored"] = True

    def indexed_as_stored(self, keys):
        """A committed index says these segments are stored: they leave the spool, and the index rows written
        from now on. Not before: a process killed between an upload and that commit leaves them to
        `recover_spool`, which uploads them again and marks them stored (docs/ARCHITECTURE.md, "Media any node
        can reach")."""
        for key in keys:
            self.done.pop(key, None)
        for key in keys & self.uploaded:
            _remove(self.spool / key)
            self.uploaded.discard(key)

    def discard_spool(self):
        """STREAM_REVOKED, once this holder's uploads have finished: nothing of the stream stays in the spool, the
        segments uploaded earlier (spooled until an index said stored) included."""
        shutil.rmtree(self._dir(), ignore_errors=True)
        self.uploaded.clear()

    def remove_empty_spool_dirs(self):
        """File thread (where a new holder of the stream in this process would create them again), once the
        stream is no longer held here and its last index is written: its spool directories go, unless a segment
        that failed to upload is still in them (for `recover_spool`). A worker holding thousands of streams a day
        would otherwise keep two empty directories for each."""
        directory = self._dir()
        for path in (directory / "audio", directory):
            try:
                path.rmdir()
            except OSError:  # absent, or not empty
                pass

    def close(self, upload=True, uploader=None):
        """Roll the open segments; returns every upload of this holder still running, those of segments rolled
        earlier too: the stream's final index is written once all of them are stored (docs/STREAMS.md)."""
        self.roll(upload, uploader)
        return [upload for upload in self.uploads if not upload.done()]


def _remove(path):
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _upload(files, path):
    """Upload a spooled segment of `files`' stream (a WAV, or a frame directory file by file); it stays in the
    spool. False when the stream was erased meanwhile: what it stored is deleted again, and it is not to be
    indexed. Every upload looks for the erasure after it, which with the erasure's second deletion after its
    commit leaves nothing in storage (docs/ARCHITECTURE.md, "An erasure and the uploads running alongside it")."""
    for item in sorted(path.iterdir()) if path.is_dir() else [path]:
        storage().put_file(files.key_of(item), item)
    if _media_deleted(files.stream_pk):
        storage().delete_stream(files.stream_id)
        return False
    return True


def write_media(files, audio, frames):
    """File thread: append a stream's audio and frames; record the send→store lag of what was written. A call
    per stream per tick: only the calls that must be made (docs/STREAMS.md, "How often the holder reads and
    stores")."""
    for key, (chunks, first_ts, last_ts, gaps, _) in audio.items():
        if gaps is None:
            files.append_audio(key, chunks, first_ts, last_ts)
        else:  # the frames between two gaps at a time, each gap's silence before them
            start, run_first_ts = 0, first_ts
            for index, resumed_ts, paused_ts in gaps:
                files.append_audio(key, chunks[start:index], run_first_ts, paused_ts)
                start, run_first_ts = index, resumed_ts
            files.append_audio(key, chunks[start:], run_first_ts, last_ts)
        now = _now_ms()
        metrics.store_lag.record(now, first_ts, last_ts, len(chunks))
        files.last_lag_ms = now - last_ts
    for kind, user_id, timestamp, data in frames:
        files.frame_dir(kind, timestamp).add(timestamp, user_id, data)
        metrics.store_lag.record(_now_ms(), timestamp, timestamp, 1)


_INDEX_UPDATED = ["kind", "user_id", "sample_rate", "channels", "bytes", "frames", "first_timestamp",
                  "last_timestamp", "stored", "node", "updated"]


def write_index(streams_index):
    """Database thread: the media index (a row per segment) and the streams' media counters summed over every
    segment of every holder, so a takeover or a retried write never double counts. Three statements for every
    batch of streams, however many: the host writes a tenth of its streams every INDEX_INTERVAL / 10.
    `streams_index`: [(StreamFiles, its index rows)]; once committed, the segments it says are stored leave
    their spool. A stream erased is left out: its rows never come back."""
    if not streams_index:
        return
    # Each row as it is now: an upload finishing meanwhile is indexed by the next write, and stays spooled till then.
    index = [(files, [MediaFile(stream_id=files.stream_pk, **row) for row in rows]) for files, rows in streams_index]
    with transaction.atomic():
        unerased = _lock_unerased([files.stream_pk for files, _ in streams_index])
        MediaFile.objects.bulk_create(
            [row for files, rows in index if files.stream_pk in unerased for row in rows], update_conflicts=True,
            unique_fields=["stream", "path"], update_fields=_INDEX_UPDATED)
        if unerased:
            _count_media(sorted(unerased))
    # An erased stream's uploaded segments leave the spool too: their stored copies went with the erasure.
    for files, rows in index:
        files.indexed_as_stored({row.path for row in rows if row.stored})


def _lock_unerased(stream_pks):
    """Those of the streams not erased, their rows locked to the end of the transaction (in one order: two
    writers never deadlock). An erasure marks its stream first and deletes its rows after, in one transaction
    (rtms/stream_content.py): a write of its index, transcript, chat or events either commits before it and its
    rows are deleted with the others, or waits for its commit and writes none (docs/ARCHITECTURE.md, "An erasure
    and the uploads running alongside it")."""
    return set(StreamSession.objects.filter(pk__in=stream_pks, media_deleted=False).order_by("pk")
               .select_for_update(no_key=True).values_list("pk", flat=True))


def _count_media(stream_pks):
    """The streams' audio_bytes, video_frames and deskshare_frames from their index, in one UPDATE."""
    quote = connection.ops.quote_name
    media_table, streams_table = quote(MediaFile._meta.db_table), quote(StreamSession._meta.db_table)

    def total(column, kinds):
        marks = ", ".join(["%s"] * len(kinds))
        return (f"COALESCE((SELECT SUM(m.{quote(column)}) FROM {media_table} m WHERE m.{quote('stream_id')} = "
                f"{streams_table}.{quote('id')} AND m.{quote('kind')} IN ({marks})), 0)"), list(kinds)

    audio, audio_params = total("bytes", [MediaFile.Kind.AUDIO_MIXED, MediaFile.Kind.AUDIO_PARTICIPANT])
    video, video_params = total("frames", [MediaFile.Kind.VIDEO])
    share, share_params = total("frames", [MediaFile.Kind.DESKSHARE])
    sql = (f"UPDATE {streams_table} SET {quote('audio_bytes')} = {audio}, {quote('video_frames')} = {video}, "
           f"{quote('deskshare_frames')} = {share} WHERE {quote('id')} IN ({', '.join(['%s'] * len(stream_pks))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, audio_params + video_params + share_params + list(stream_pks))


def _update_streams(columns, rows):
    """One UPDATE for many streams: `rows` are (stream pk, a value per column), added to the columns. Plain SQL
    with CASE, so it runs on PostgreSQL and SQLite alike: compiling Django's Case/When for a thousand streams was
    ~14% of a busy worker's CPU (py-spy)."""
    quote = connection.ops.quote_name
    whens = " ".join(["WHEN %s THEN %s"] * len(rows))
    assignments, params = [], []
    for position, column in enumerate(columns, start=1):
        value = f"CASE {quote('id')} {whens} ELSE 0 END"
        assignments.append(f"{quote(column)} = {quote(column)} + {value}")
        params.extend(item for row in rows for item in (row[0], row[position]))
    pks = [row[0] for row in rows]
    sql = (f"UPDATE {quote(StreamSession._meta.db_table)} SET {', '.join(assignments)} "
           f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(pks))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, params + pks)


def _described(row):
    """An index row for a recovered segment never indexed (killed within INDEX_INTERVAL of its start), from its
    name: `<who>-<first timestamp>-g<generation>` (rtms/media.py)."""
    name = row["path"].rsplit("/", 1)[1].removesuffix(".wav")
    who, first, _ = name.rsplit("-", 2)
    if row["path"].split("/")[2] != "audio":
        return dict(row, kind=who, first_timestamp=int(first))
    if who == "mixed":
        return dict(row, kind=MediaFile.Kind.AUDIO_MIXED, first_timestamp=int(first), sample_rate=16000, channels=1)
    return dict(row, kind=MediaFile.Kind.AUDIO_PARTICIPANT, user_id=int(who.removeprefix("user-")),
                first_timestamp=int(first), sample_rate=16000, channels=1)


def recover_spool(spool_root, node=""):
    """Upload what processes that died (kill -9, a crash) left in their spool, and mark those segments stored in
    the index (a segment never indexed is indexed as written by the dead process). A directory is abandoned when no
    process holds its lock and, another host's, its writer went silent (rtms/spool.py). `node`: the recovering
    process, for the log. Returns how many segments were uploaded."""
    uploaded = 0
    for directory, writer in spool.abandoned(spool_root):
        stream_dirs = sorted((directory / "rtms").iterdir()) if (directory / "rtms").exists() else []
        for stream_dir in stream_dirs:
            stream = StreamSession.objects.filter(rtms_stream_id=stream_dir.name).first()
            if stream is None or stream.media_deleted:
                shutil.rmtree(stream_dir, ignore_errors=True)  # erased meanwhile: never uploaded
                continue
            files = StreamFiles(stream.pk, stream.rtms_stream_id, 0, directory, node)
            rows = []
            for path in sorted(stream_dir.glob("audio/*.wav")):
                wav = media.WavFile(path)  # drops a torn last sample, and its close() writes the real sizes
                wav.close()
                # What it got after the last index write is known from its size only. It holds Zoom's timeline
                # from its first frame, gaps as silence, so its last 20 ms frame starts 20 ms before its end; and
                # the frames Zoom sent are those indexed plus the bytes written since counted as frames (silence
                # written since included: at most that many).
                first = int(path.stem.rsplit("-", 2)[1])
                key = files.key_of(path)
                indexed_bytes, indexed_frames = MediaFile.objects.filter(stream=stream, path=key).values_list(
                    "bytes", "frames").first() or (0, 0)
                rows.append(dict(path=key, bytes=wav.data_bytes,
                                 frames=indexed_frames + (wav.data_bytes - indexed_bytes) // FRAME_BYTES,
                                 last_timestamp=first + max(0, wav.data_bytes - FRAME_BYTES) // PCM_BYTES_PER_MS))
            for frame_dir in sorted(p for p in stream_dir.iterdir() if p.is_dir() and p.name != "audio"):
                frames = media.FrameDir(frame_dir)
                frames.close()
                rows.append(dict(path=files.key_of(frame_dir), bytes=frames.bytes, frames=frames.frames))
            for row in rows:
                if not _upload(files, files.spool / row["path"]):
                    break  # erased meanwhile: what it stored is deleted again
                with transaction.atomic():
                    if not _lock_unerased([stream.pk]):
                        break  # erased after the upload looked: the erasure's second deletion took it
                    if not MediaFile.objects.filter(stream=stream, path=row["path"]).update(stored=True, **row):
                        MediaFile.objects.create(stream=stream, stored=True, node=writer, **_described(row))
                    _count_media([stream.pk])
                uploaded += 1
            # Every segment indexed as stored, or the stream erased (killed before: again).
            shutil.rmtree(stream_dir, ignore_errors=True)
        spool.discard(directory)
    if uploaded:
        log.info("spool recovered", extra={"segments": uploaded, "node": node})
    return uploaded


class FailedUploads:
    """The segments of this process that failed to upload (storage unreachable: an outage, a bucket not there yet),
    tried again while the process lives, oldest first; a process that dies leaves them to `recover_spool`. One
    backoff for all of them, since one storage fails them all: a pass stops at its first failure and the next
    waits twice as long, from RETRY_FIRST up to RETRY_MAX; a pass that uploads every one resets it. The segment
    that failed goes to the back, so one that can never be uploaded does not hold up the others."""

    RETRY_FIRST = 5.0
    RETRY_MAX = 300.0

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._segments = []  # (StreamFiles, index row, spooled path), oldest first
        self._delay = self.RETRY_FIRST
        self._next_at = 0.0

    def __len__(self):
        return len(self._segments)

    def add(self, files, row, path):
        """An upload thread: this segment failed (its first try, or the retry's)."""
        with self._lock:
            if not self._segments:
                self._next_at = self._clock() + self._delay
            self._segments.append((files, row, path))

    def retry(self):
        """The spool thread, when the backoff allows: upload the segments again. Returns [(StreamFiles, row)] of
        those uploaded now, for the caller to index as stored. A segment whose file is gone (STREAM_REVOKED empties
        the spool) is dropped; one whose stream was erased is dropped once its stream's storage is emptied again
        (its failed upload, or the deletion after it, may have left it there), never uploaded. The erasure is
        looked for just before each upload and again after it (a pass after an outage may take minutes): a stream
        erased during its upload has its storage emptied again, and nothing is indexed. Whatever fails (storage,
        the database), every segment not uploaded stays queued."""
        if not self._segments or self._clock() < self._next_at:
            return []
        with self._lock:
            segments, self._segments = self._segments, []
        uploaded, done = [], 0
        try:
            for files, row, path in segments:
                if path.exists():  # else STREAM_REVOKED emptied the spool
                    if _media_deleted(files.stream_pk):
                        storage().delete_stream(files.stream_id)
                        _remove(path)
                    elif _upload(files, path):
                        files.uploaded_as(row)
                        uploaded.append((files, row))
                    else:  # erased during its upload
                        _remove(path)
                done += 1
        except Exception as exc:  # noqa: BLE001 - still failing: the rest wait for the next pass
            metrics.sink_write_failures.labels(what="upload").inc()
            with self._lock:
                self._segments[:0] = [*segments[done + 1:], segments[done]]  # the failing one goes to the back
                self._delay = min(self._delay * 2, self.RETRY_MAX)
                self._next_at = self._clock() + self._delay
            log.warning("segments still not uploaded, trying again later", extra={
                "segments": len(self._segments), "retry_in": self._delay, "error": repr(exc)[:300]})
        else:
            with self._lock:
                self._delay = self.RETRY_FIRST
        if uploaded:
            log.info("segments uploaded after failing", extra={"segments": len(uploaded)})
        return uploaded


def _media_deleted(stream_pk):
    """Also on an upload thread, on that thread's own connection: one that failed (PostgreSQL restarted) is closed,
    so that the thread's next upload connects again."""
    try:
        return StreamSession.objects.filter(pk=stream_pk, media_deleted=True).exists()
    except (OperationalError, InterfaceError):
        connection.close()
        raise


class RowBatch:
    """New rows of one stream, kept until they are committed."""

    __slots__ = ("stream_pk", "stream_id", "client_id", "transcripts", "chats", "events")

    def __init__(self, stream_pk, stream_id, client_id, transcripts, chats, events):
        self.stream_pk, self.stream_id, self.client_id = stream_pk, stream_id, client_id
        self.transcripts, self.chats, self.events = transcripts, chats, events


def write_rows(batches):
    """Database thread: every pending batch in one transaction. Raises when the database is unreachable;
    the caller keeps the batches and retries. The new lines are announced after commit. A stream erased is left
    out (not stored, counted nor announced): its rows never come back."""
    with transaction.atomic():
        unerased = _lock_unerased([batch.stream_pk for batch in batches])
        batches = [batch for batch in batches if batch.stream_pk in unerased]
        if not batches:
            return
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
            counts = per_stream.setdefault(batch.stream_pk, [(batch.client_id, batch.stream_id), [], 0, 0])
            counts[1].extend(segments)
            counts[2] += len(batch.chats)
            counts[3] += len(batch.events)
        TranscriptSegment.objects.bulk_create(transcripts, ignore_conflicts=True)
        ChatMessage.objects.bulk_create(chats)
        ParticipantEvent.objects.bulk_create(events)
        _update_streams(("transcript_count", "chat_count", "event_count"), [
            (stream_pk, len(segments), chat_count, event_count)
            for stream_pk, (_, segments, chat_count, event_count) in per_stream.items()])
        transaction.on_commit(lambda: _announce_transcripts(per_stream))
    committed_at = _now_ms()
    for segment in transcripts:
        metrics.store_lag.record(committed_at, segment.timestamp, segment.timestamp, 1)


def _announce_transcripts(per_stream):
    """One signal for every stream with new lines, named by the app holding it and its id as the batches carry
    them: loading the streams' rows to name them was half of the row thread's time (py-spy, 450 streams)."""
    lines = {stream: segments for stream, segments, _, _ in per_stream.values() if segments}
    if lines:
        signals.transcript_received.send_robust(sender=StreamSession, lines=lines)


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
