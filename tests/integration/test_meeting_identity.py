"""Who a meeting belongs to (its account and host) is set by the first verified input of the app and never
overwritten after (docs/SECURITY.md "Tenancy"), even by an input that read the row before the first one committed."""

import threading

import pytest
from django.db import connection

from tests.consent_support import make_app, meeting_uuid
from tests.locks_support import blocked_on_a_lock, held_elsewhere
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_later_input_does_not_change_who_the_meeting_belongs_to():
    from zoomapp.consent import meetings

    app, uuid = make_app(), meeting_uuid()
    meetings.get_meeting(app, uuid, host_user_id="hana", account_id="acctH", topic="Weekly")
    later = meetings.get_meeting(app, uuid, host_user_id="mallory", account_id="acctM", topic="Renamed")
    assert (later.host_user_id, later.account_id, later.topic) == ("hana", "acctH", "Renamed")


def test_the_first_input_to_commit_sets_the_host_even_if_another_read_the_row_before():
    from zoomapp.consent import meetings
    from zoomapp.consent.models import Meeting

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    app, uuid = make_app(), meeting_uuid()
    row = meetings.get_meeting(app, uuid)
    offered = []

    def mallory_offers_herself():
        try:
            offered.append(meetings.get_meeting(app, uuid, host_user_id="mallory"))
        finally:
            connection.close()

    # Hana's input has filled the host, not yet committed: Mallory's reads the row with no host, then waits.
    with held_elsewhere(lambda: Meeting.objects.filter(pk=row.pk).update(host_user_id="hana")):
        offering = threading.Thread(target=mallory_offers_herself)
        offering.start()
        wait_for(blocked_on_a_lock, 10, "Mallory's input to wait for the meeting's row")
    offering.join(10)
    assert Meeting.objects.get(pk=row.pk).host_user_id == "hana"
    assert offered[0].host_user_id == "hana"
