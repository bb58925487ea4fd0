"""Who acts, and what they may do: the actor of a change, the refusal, and the role checks every action makes.

A role is never taken from the client: role_of() reads what Zoom told us (its signed meeting events and verified
app contexts) for this app's row of the meeting (docs/CONSENT.md "Who may do what").
"""

from dataclasses import dataclass

from rtms.compiled_read import CompiledRead
from zoomapp import texts
from zoomapp.consent.models import Participant

HOST_ROLES = (Participant.Role.HOST, Participant.Role.CO_HOST)


@dataclass(frozen=True)
class Actor:
    """Who acts and from where (for the audit log). The role is never taken from here: see role_of()."""

    user_id: str
    name: str = ""
    source: str = ""  # panel_ws | panel_http | webhook | stream | task | auto_start
    address: str = ""


ZOOM = Actor("zoom", "Zoom", "webhook")
# Actors that are not users in the meeting (Zoom itself, and the app acting on its own: actions.starting.APP).
NOT_PEOPLE = ("zoom", "app")


class Refused(Exception):
    """A refused action: `code` for the API, `message` for people. Nothing was changed."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


_ROLE = CompiledRead(lambda meeting_pk, user_id: Participant.objects.filter(meeting_id=meeting_pk, user_id=user_id)
                     .values_list("role"), -1, "user id stand-in")


def role_of(meeting, user_id):
    """The user's role now, from what Zoom told us (webhooks and verified app contexts), never from the client.

    Read once per user in a change of the meeting: roles change only under the meeting's lock, which the change
    holds, so the check and the audit entry of one action need one read (`remembered_roles`, forgotten by
    meetings.upsert_participant)."""
    if not user_id:
        return Participant.Role.PARTICIPANT
    remembered = getattr(meeting, "remembered_roles", None)
    if remembered is not None and user_id in remembered:
        return remembered[user_id]
    found = _ROLE.one(meeting.pk, user_id)
    if found is not None:
        (role,) = found
    else:
        role = Participant.Role.HOST if user_id == meeting.host_user_id else Participant.Role.PARTICIPANT
    if remembered is not None:
        remembered[user_id] = role
    return role


def is_host(meeting, user_id):
    return role_of(meeting, user_id) in HOST_ROLES


def require_host(meeting, actor):
    if not is_host(meeting, actor.user_id):
        raise Refused("not_host", texts.REFUSED_NOT_HOST)


def require_owner_or_host(meeting, actor, share):
    if share.user_id != actor.user_id and not is_host(meeting, actor.user_id):
        raise Refused("not_your_app", texts.REFUSED_NOT_OWNER_OR_HOST)


def require_live(meeting):
    if meeting.ended_at is not None:
        raise Refused("meeting_ended", texts.MEETING_ENDED)
