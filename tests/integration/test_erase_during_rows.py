"""A stream's erasure against its holder's writes of transcript, chat and participant-event rows (docs/ARCHITECTURE.md,
"An erasure and the uploads running alongside it"): a row write committing after the erasure, or under way while it
runs, leaves none of the erased stream's rows, and neither counts nor announces them; the other streams of the same
batch are written as ever. Against PostgreSQL; another connection's row lock decides which transaction goes first."""


import pytest

from rtms import signals, sinks, stream_content
from rtms.models import ChatMessage, ParticipantEvent, StreamSession, TranscriptSegment
from tests.locks_support import held_elsewhere, run_queued_behind, thread_with_its_own_connection, wait_until_blocked

pytestmark = pytest.mark.django_db(transaction=True)  # the holder's thread reads what the erasure committed


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def announced():
    """The (app, stream id) of every stream whose new transcript lines were announced to the panels."""
    streams = []

    def record(sender, lines, **kwargs):
        streams.extend(lines)

    signals.transcript_received.connect(record, weak=False, dispatch_uid="test.erase_during_rows")
    yield streams
    signals.transcript_received.disconnect(dispatch_uid="test.erase_during_rows")


def stream_with_rows(stream_id):
    """A stream and its holder's batch of new rows: a transcript line, a chat message, a participant joining."""
    stream = StreamSession.objects.create(rtms_stream_id=stream_id, meeting_uuid="m==", client_id="app")
    store = sinks.StreamStore(stream.pk, stream_id, "app")
    store.on_transcript(16778240, "Ana", 1000, 3400, 3400, 9, "The numbers look good.")
    store.on_chat(16778240, "Ana", 3500, "slides attached")
    store.on_event(3, {"timestamp": 3600, "participants": [{"user_id": 16778240, "user_name": "Ana"}]})
    return stream, store.take_rows()


def rows_of(stream):
    return (TranscriptSegment.objects.filter(stream=stream).count(), ChatMessage.objects.filter(stream=stream).count(),
            ParticipantEvent.objects.filter(stream=stream).count())


def counted(stream):
    stream.refresh_from_db()
    return stream.transcript_count, stream.chat_count, stream.event_count


def test_rows_written_after_the_erasure_are_neither_stored_counted_nor_announced(announced):
    erased, erased_rows = stream_with_rows("e" * 32)
    live, live_rows = stream_with_rows("f" * 32)
    stream_content.erase_stream_content(erased, why="stream_revoked")

    sinks.write_rows([erased_rows, live_rows])  # the holder's next tick, for every stream it holds

    assert rows_of(erased) == (0, 0, 0) and counted(erased) == (0, 0, 0)
    assert rows_of(live) == (1, 1, 1) and counted(live) == (1, 1, 1)
    assert announced == [("app", "f" * 32)]


@pytest.mark.parametrize("first", ["row write", "erasure"])
def test_a_row_write_under_way_during_the_erasure_leaves_no_row(first, announced):
    erased, erased_rows = stream_with_rows("e" * 32)
    live, live_rows = stream_with_rows("f" * 32)
    write = thread_with_its_own_connection(sinks.write_rows, [live_rows, erased_rows])
    erase = thread_with_its_own_connection(stream_content.erase_stream_content, erased, "stream_revoked")
    threads = [write, erase] if first == "row write" else [erase, write]
    # Another transaction holds the erased stream's row: each waits for it where it first locks it, both under way
    # at once, and the first to wait goes first.
    run_queued_behind(lambda: StreamSession.objects.select_for_update().get(pk=erased.pk), threads)

    assert rows_of(erased) == (0, 0, 0)
    assert StreamSession.objects.get(pk=erased.pk).media_deleted
    assert rows_of(live) == (1, 1, 1) and counted(live) == (1, 1, 1)
    assert ("app", "f" * 32) in announced
    if first == "erasure":
        assert announced == [("app", "f" * 32)]


def test_an_erasure_committing_while_a_row_write_is_under_way_leaves_no_row(announced):
    live, live_rows = stream_with_rows("f" * 32)  # the lower id: the row write locks it first
    erased, erased_rows = stream_with_rows("e" * 32)
    write = thread_with_its_own_connection(sinks.write_rows, [live_rows, erased_rows])
    erase = thread_with_its_own_connection(stream_content.erase_stream_content, erased, "stream_revoked")
    # Another transaction holds the live stream's row: the row write waits for it, and the erasure runs to its
    # commit meanwhile.
    with held_elsewhere(lambda: StreamSession.objects.select_for_update().get(pk=live.pk)):
        write.start()
        wait_until_blocked()
        erase.start()
        erase.join(10)
        assert not erase.is_alive()  # an erasure never waits for a holder's row write
    write.join(10)
    assert not write.is_alive()

    assert rows_of(erased) == (0, 0, 0) and counted(erased) == (0, 0, 0)
    assert rows_of(live) == (1, 1, 1) and counted(live) == (1, 1, 1)
    assert announced == [("app", "f" * 32)]


def test_a_live_streams_rows_are_written_counted_and_announced(announced):
    live, live_rows = stream_with_rows("f" * 32)

    sinks.write_rows([live_rows])

    assert rows_of(live) == (1, 1, 1) and counted(live) == (1, 1, 1)
    assert announced == [("app", "f" * 32)]
