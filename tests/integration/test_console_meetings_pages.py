"""The console's meetings page at production scale, against daphne and the simulator's Zoom OAuth: every meeting of
the account is reached, a page at a time or by a search (a word of its topic, its UUID, its host's id), the page
says how many it shows, and an old meeting's data is deleted from its own page."""

import html
import re
import secrets

import pytest

from rtms.models import StreamSession, TranscriptSegment
from tests.console_support import post_form
from tests.integration.test_console_security import admins, apps  # noqa: F401 - fixtures
from zoomapp.consent.models import Meeting, Participant
from zoomapp.console import paging

pytestmark = pytest.mark.django_db(transaction=True)


def account_meetings(app, count, account_id="acctA"):
    """`count` meetings, "Meeting <n>" in the order they were made (the newest last), each hosted by host<n % 3>."""
    return Meeting.objects.bulk_create(
        Meeting(app=app, uuid=f"{secrets.token_hex(11)}==", topic=f"Meeting {n}", host_user_id=f"host{n % 3}",
                account_id=account_id) for n in range(count))


def topics(page):
    return [html.unescape(topic) for topic in re.findall(r'<span title="Meeting UUID [^"]+">([^<]+)</span>', page)]


def link(page, testid):
    found = re.search(r'<a href="([^"]+)" data-testid="' + testid + '"', page)
    return html.unescape(found.group(1)) if found else None


def shown_line(page):
    found = re.search(r'<p data-testid="meetings-shown">(.*?)</p>', page, re.S)
    return html.unescape(found.group(1)).strip()


def test_every_meeting_is_reached_a_page_at_a_time(daphne, apps, admins):  # noqa: F811
    notetaker, _ = apps
    olive, _, _ = admins
    count = 2 * paging.MEETINGS_PAGE_SIZE + 5
    account_meetings(notetaker, count)
    account_meetings(notetaker, 3, account_id="acctB")

    seen, url, lines = [], f"{daphne.url}/console/meetings", []
    while url:
        page = olive.get(url, timeout=10)
        assert page.status_code == 200, page.text
        seen += topics(page.text)
        lines.append(shown_line(page.text))
        url = link(page.text, "older") and daphne.url + link(page.text, "older")
    assert seen == [f"Meeting {n}" for n in range(count - 1, -1, -1)]  # each once, newest first, only A's
    assert lines == [f"Showing {paging.MEETINGS_PAGE_SIZE} of {count} meetings, newest first.",
                     f"Showing {paging.MEETINGS_PAGE_SIZE} of {count} meetings, newest first, after those of the "
                     "pages before.",
                     f"Showing 5 of {count} meetings, newest first, after those of the pages before."]


def test_a_meeting_is_found_by_a_word_of_its_topic_its_uuid_or_its_host(daphne, apps, admins):  # noqa: F811
    notetaker, _ = apps
    olive, bert, _ = admins
    made = account_meetings(notetaker, 30)
    other = account_meetings(notetaker, 1, account_id="acctB")[0]

    def found(session, q):
        page = session.get(f"{daphne.url}/console/meetings", params={"q": q}, timeout=10)
        assert page.status_code == 200, page.text
        return topics(page.text), shown_line(page.text)

    assert found(olive, "meeting 2") == ([f"Meeting {n}" for n in (29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 2)],
                                         "Showing 11 of 11 meetings matching “meeting 2”, newest first.")
    assert found(olive, made[7].uuid) == (["Meeting 7"], f"Showing 1 of 1 meeting matching “{made[7].uuid}”, "
                                                         "newest first.")
    assert found(olive, "host1")[0] == [f"Meeting {n}" for n in range(28, 0, -3)]
    assert found(olive, other.uuid) == ([], f"No meeting matches “{other.uuid}”.")  # another account's
    assert found(bert, made[7].uuid)[0] == []


@pytest.mark.parametrize(("params", "message"), [
    ({"q": "x" * 301}, "search: Ensure this value has at most 300 characters (it has 301)."),
    ({"q": "board\x00"}, "search: Use printable characters only."),
    ({"before": "-3"}, "This page link is not valid: start from the newest."),
    ({"before": "999999999"}, "This page link is not valid: start from the newest."),
])
def test_a_bad_search_or_page_is_refused_with_a_message(daphne, apps, admins, params, message):  # noqa: F811
    notetaker, _ = apps
    olive, _, _ = admins
    account_meetings(notetaker, 3)
    page = olive.get(f"{daphne.url}/console/meetings", params=params, timeout=10)
    assert page.status_code == 400 and message in html.unescape(page.text)
    assert topics(page.text) == []


def test_an_old_meetings_data_is_deleted_from_its_page_and_the_admin_is_back_on_it(daphne, apps, admins):  # noqa: F811
    notetaker, _ = apps
    olive, _, _ = admins
    made = account_meetings(notetaker, paging.MEETINGS_PAGE_SIZE + 3)
    old = made[1]
    stream = StreamSession.objects.create(rtms_stream_id=secrets.token_hex(16), meeting_uuid=old.uuid,
                                          client_id=notetaker.client_id, operator_id="host1", state="stopped",
                                          transcript_count=1)
    TranscriptSegment.objects.create(stream=stream, user_id=1, start_time=1, end_time=2, timestamp=1, text="old")

    first = olive.get(f"{daphne.url}/console/meetings", timeout=10).text
    assert "Meeting 1" not in topics(first)
    older = link(first, "older")
    page = olive.get(daphne.url + older, timeout=10).text
    assert "Meeting 1" in topics(page) and "Delete this meeting's data" in page
    before = older.split("before=")[1]
    done = post_form(olive, f"{daphne.url}/console/meetings/delete-data",
                     {"meeting_uuid": old.uuid, "client_id": notetaker.client_id, "confirm": "yes",
                      "before": before})
    assert done.status_code == 302 and done.headers["Location"] == f"/console/meetings?before={before}"
    assert not TranscriptSegment.objects.filter(stream=stream).exists()
    assert "Deleted the stored data of 1 stream(s) of “Meeting 1”" in html.unescape(
        olive.get(daphne.url + done.headers["Location"], timeout=10).text)


def deletion_cell(page, meeting):
    row = page[page.index(f'<tr data-meeting="{meeting.uuid}"'):]
    return row[:row.index("</tr>")]


def words(fragment):
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_the_page_says_what_deleting_keeps_and_a_meeting_with_a_live_stream_cannot_be_deleted_yet(
        daphne, apps, admins):  # noqa: F811
    notetaker, _ = apps
    olive, _, _ = admins
    ended, live = account_meetings(notetaker, 2)
    Participant.objects.create(meeting=ended, user_id="pat1", name="Pat Participant")
    for meeting, state in ((ended, "stopped"), (live, "active")):
        StreamSession.objects.create(rtms_stream_id=secrets.token_hex(16), meeting_uuid=meeting.uuid,
                                     client_id=notetaker.client_id, operator_id="host1", state=state,
                                     transcript_count=1)

    page = olive.get(f"{daphne.url}/console/meetings", timeout=10).text
    erases = re.search(r'<p id="deletion-erases">(.*?)</p>', page, re.S).group(1)
    keeps = re.search(r'<p id="deletion-keeps">(.*?)</p>', page, re.S).group(1)
    assert words(erases) == (
        "Deleting a meeting's data erases what its app stored from the meeting's streams: the media files (audio, "
        "video frames, and the transcript and chat saved beside them), the transcript lines, the chat messages and "
        "the participants' joins and leaves; and Zoom's notifications about the meeting as they were received, which "
        "hold participants' names and emails.")
    assert words(keeps) == (
        "It keeps the meeting, which stays listed here: its topic, host and times, its participants' Zoom user ids "
        "and names, who shared it with which app, each stream's record (who started it, when, and how much it "
        "stored) and the audit log's entries about it, which also record who deleted the data and when. While a "
        "stream of the meeting is live, its data cannot be deleted: wait until every stream has stopped.")

    streaming = deletion_cell(page, live)
    assert re.search(r'<input type="checkbox" name="confirm"[^>]* disabled>', streaming)
    button = re.search(r'<button type="submit" class="danger small" disabled aria-describedby="([^"]+)">', streaming)
    reason = re.search(rf'<span class="muted still-live" id="{button.group(1)}">(.*?)</span>', streaming)
    assert reason.group(1) == "A stream is live: its data can be deleted once every stream has stopped."
    stopped = deletion_cell(page, ended)
    assert '<button type="submit" class="danger small">' in stopped and "still-live" not in stopped
    assert 'aria-describedby="deletion-erases deletion-keeps"' in stopped

    done = post_form(olive, f"{daphne.url}/console/meetings/delete-data",
                     {"meeting_uuid": ended.uuid, "client_id": notetaker.client_id, "confirm": "yes"})
    assert done.status_code == 302
    after = olive.get(f"{daphne.url}/console/meetings", timeout=10).text
    assert "Meeting 0" in topics(after) and "deleted" in words(deletion_cell(after, ended))  # still listed, as said
    assert list(Participant.objects.filter(meeting=ended).values_list("user_id", "name")) == [
        ("pat1", "Pat Participant")]
