"""Pushing a meeting's state to its panels: the groups they join, and the one way a change is announced.

Every action that changes what a panel shows calls mark_changed() under the meeting's lock: the version goes up
and, after commit, the full state goes to every panel of that app in the meeting (docs/ARCHITECTURE.md
"Pushing state"). Panels apply a state only when its version is newer, so a dropped push is repaired by the next.
"""

from django.db import connection, transaction

from rtms import pushes
from rtms.compiled_read import CompiledModelRead
from zoomapp.consent.models import Meeting
from zoomapp.consent.panel_state import meeting_state
from zoomapp.marketplace.models import ZoomApp

_BUMP_VERSION = "UPDATE {} SET version = version + 1 WHERE {} = %s RETURNING version".format(
    *(connection.ops.quote_name(name) for name in (Meeting._meta.db_table, Meeting._meta.pk.column)))


_APPS_ROWS_OF_MEETING = CompiledModelRead(
    lambda uuid: Meeting.objects.filter(uuid=uuid).select_related("app").defer(*ZoomApp.secrets_of("app")),
    "meeting uuid stand-in")


def meeting_group(client_id, meeting_uuid):
    """The panels of one app in one meeting (docs/SECURITY.md "Tenancy": pushes never cross apps)."""
    return pushes.group_name("meeting", client_id, meeting_uuid)


def user_group(client_id, meeting_uuid, viewer_id):
    """One viewer's panels of one app: transcript lines and SDK calls meant for that user only."""
    return pushes.group_name("user", client_id, meeting_uuid, viewer_id)


def push_to_user(share, message):
    pushes.push(user_group(share.app.client_id, share.meeting.uuid, share.user_id), message)


def publish_meeting_state(meeting_id, meeting_uuid):
    """Read the committed state and push it to every panel of this app in the meeting, and to the other apps'
    panels of the same Zoom meeting too, whose hosts see this app's pending requests (panel_state._other_apps).
    Every app's row of the meeting in one query."""
    rows = _APPS_ROWS_OF_MEETING.all(meeting_uuid)
    meeting = next((row for row in rows if row.pk == meeting_id), None)
    if meeting is None:
        return None
    others = [row for row in rows if row.pk != meeting_id]
    state = meeting_state(meeting, others)
    pushes.push(meeting_group(meeting.app.client_id, meeting.uuid), {"type": "panel.state", "state": state})
    if others:
        # Panels apply only newer versions: the other apps' states changed too (their other_apps part). Their rows
        # are read again after the bump: one read before it may miss a change of that app committed meanwhile,
        # and its panels would keep the older state under the newer version until the app's next change.
        for other in others:
            _bump_version(other)
        for other in _APPS_ROWS_OF_MEETING.all(meeting_uuid):
            if other.pk != meeting_id:
                pushes.push(meeting_group(other.app.client_id, other.uuid),
                            {"type": "panel.state", "state": meeting_state(other)})
    return state


def mark_changed(meeting, *, publish=True):
    """Bump the version under the meeting's row lock and push after commit. The new version comes back with the
    update: one round trip on every change's path to the panels."""
    _bump_version(meeting)
    if publish:
        meeting_id, meeting_uuid = meeting.pk, meeting.uuid
        transaction.on_commit(lambda: publish_meeting_state(meeting_id, meeting_uuid), robust=True)


def _bump_version(meeting):
    """The meeting's version + 1, read back with the update (one round trip)."""
    with connection.cursor() as cursor:
        cursor.execute(_BUMP_VERSION, [meeting.pk])
        (meeting.version,) = cursor.fetchone()
