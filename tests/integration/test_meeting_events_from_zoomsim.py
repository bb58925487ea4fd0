"""The simulator's meeting events (Zoom's nested shape) through daphne into our meeting rows: the account and host
from the events, people keyed by their Zoom user id (never the per-meeting participant id), the host recognised by
host_id, a co-host from participant_role_changed, guests left out, departures and the end."""

import pytest

from tests.consent_support import make_app, register_with_sim
from tests.processes import wait_for
from zoomapp.consent.models import Meeting, Participant

pytestmark = pytest.mark.django_db(transaction=True)


def people(app, uuid):
    return {p.user_id: (p.role, p.present)
            for p in Participant.objects.filter(meeting__app=app, meeting__uuid=uuid)}


def test_a_simulated_meeting_is_seen_as_zoom_describes_it(daphne, zoomsim):
    app = make_app("Roster")
    register_with_sim(zoomsim, daphne.url, app)
    meeting = zoomsim.post("/_sim/meetings", json={
        "topic": "Roster check", "host": {"name": "Hana", "account_id": "acctRoster"},
        "participants": [{"name": "Ben"}, {"name": "Gus", "guest": True}], "start": True}).json()
    hana, ben, gus = meeting["participants"]
    assert zoomsim.post(f"/_sim/meetings/{meeting['id']}/role", json={"key": ben["key"], "role": "co-host"}).ok

    wait_for(lambda: people(app, meeting["uuid"]).get(ben["user_id"]) == ("co-host", True),
             what="Ben to be a co-host in our rows")
    row = Meeting.objects.get(app=app, uuid=meeting["uuid"])
    assert (row.account_id, row.host_user_id, row.zoom_meeting_id, row.topic, row.host_present) == (
        "acctRoster", hana["user_id"], str(meeting["id"]), "Roster check", True)
    assert people(app, meeting["uuid"]) == {hana["user_id"]: ("host", True), ben["user_id"]: ("co-host", True)}
    assert str(gus["rtms_user_id"]) not in people(app, meeting["uuid"])  # a guest has no Zoom user id to key

    zoomsim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": ben["key"]})
    wait_for(lambda: people(app, meeting["uuid"])[ben["user_id"]] == ("co-host", False), what="Ben to have left")
    zoomsim.post(f"/_sim/meetings/{meeting['id']}/end")
    wait_for(lambda: Meeting.objects.get(app=app, uuid=meeting["uuid"]).ended_at is not None,
             what="the meeting to end")
