"""A stream's stored content as a whole: its transcript and chat exported to storage beside its media, and
everything stored for it erased (STREAM_REVOKED, retention, an uninstall). Above both rtms/media.py (paths and
files) and rtms/storage.py (where the files live), so neither imports the other back.
"""

import json
import logging
import time

from django.db import transaction

from rtms import media
from rtms.models import ChatMessage, MediaFile, ParticipantEvent, StreamSession, TranscriptSegment
from rtms.signals import stream_content_erased
from rtms.storage import StorageError, storage, stream_key

log = logging.getLogger("rtms.media")


def export_text(stream):
    """Write the stream's transcript and chat to storage as JSON lines, beside its media (any node reads them);
    returns {"transcript": lines, "chat": lines}."""
    exported = {}
    for name, rows, fields in (
        ("transcript", stream.transcript.all(), ("user_id", "user_name", "start_time", "end_time", "timestamp",
                                                 "language", "text")),
        ("chat", stream.chat.all(), ("user_id", "user_name", "timestamp", "text")),
    ):
        lines = [json.dumps(dict(zip(fields, values)), ensure_ascii=False) for values in rows.values_list(*fields)]
        storage().put_bytes(stream_key(stream.rtms_stream_id, f"{name}.jsonl"),
                            "".join(line + "\n" for line in lines).encode())
        exported[name] = len(lines)
    log.info("stream text exported", extra={"stream": stream.rtms_stream_id, **exported})
    return exported


# How long one run of a purge erases before it leaves the rest to its next run (a task's work is bounded by its own
# clock: Celery's time limit would end the worker process, and with it every stream that process holds).
PURGE_SECONDS = 300


def erase_until(streams, why, deadline):
    """Erase the streams' content in turn until time.monotonic() passes `deadline`, at least one each call so a
    purge always moves on; returns (how many were erased, whether every one was tried). A stream whose storage
    refuses keeps its content and its rows, is logged, and is tried again at the next run: the others go on."""
    erased = tried = 0
    for stream in streams:
        if tried and time.monotonic() >= deadline:
            return erased, False
        tried += 1
        try:
            erase_stream_content(stream, why=why)
        except StorageError:  # logged; tried again at the next run
            continue
        erased += 1
    return erased, True


def erase_stream_content(stream, why):
    """Delete everything stored for a stream: media files and their index, transcript, chat, events. Storage goes
    first: when it refuses (StorageError) the rows stay and the stream is not marked deleted, so trying again
    erases what is left (the caller's to arrange: each one here does). Storage is emptied once more after the
    commit, for a holder's upload running alongside (docs/ARCHITECTURE.md, "An erasure and the uploads running
    alongside it")."""
    in_storage = True
    try:
        storage().delete_stream(stream.rtms_stream_id)  # by prefix: from any node (docs/ARCHITECTURE.md)
    except StorageError as exc:
        log.error("stream content not erased: storage refused", extra={
            "stream": stream.rtms_stream_id, "meeting": stream.meeting_uuid, "why": why, "error": str(exc)})
        raise
    except media.OutsideMediaRoot as exc:  # rows from before ids were checked: their rows go, no file is touched
        in_storage = False
        log.error("media directory refused, no file deleted", extra={
            "stream": stream.rtms_stream_id[:64], "meeting": stream.meeting_uuid, "error": str(exc)})
    with transaction.atomic():
        # Marked first: the stream's row stays locked to the commit, and the holder's index and row writes lock it
        # before writing (rtms/sinks.py `_lock_unerased`), so each either commits before and its rows are deleted
        # below, or waits and writes none.
        StreamSession.objects.filter(pk=stream.pk).update(media_deleted=True)
        counts = {
            "media_files": MediaFile.objects.filter(stream=stream).delete()[0],
            "transcript_segments": TranscriptSegment.objects.filter(stream=stream).delete()[0],
            "chat_messages": ChatMessage.objects.filter(stream=stream).delete()[0],
            "participant_events": ParticipantEvent.objects.filter(stream=stream).delete()[0],
        }
    if in_storage:
        try:
            storage().delete_stream(stream.rtms_stream_id)  # what an upload stored before the commit
        except StorageError as exc:  # only what an upload stored meanwhile can be left: the rows are gone
            log.error("stream content erased, but storage refused its second deletion", extra={
                "stream": stream.rtms_stream_id, "meeting": stream.meeting_uuid, "why": why, "error": str(exc)})
    log.info("stream content erased", extra={"stream": stream.rtms_stream_id, "meeting": stream.meeting_uuid,
                                             "why": why})
    stream_content_erased.send_robust(sender=StreamSession, stream=stream, why=why, counts=counts)
    return counts
