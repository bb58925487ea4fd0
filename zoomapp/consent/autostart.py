"""Auto-start (docs/CONSENT.md rule 9): apps an admin set to start by themselves for a user.

The setting ("Auto-start apps that access shared real-time meeting content", per app, at account, group or
user level; zoomapp.console.models.AutoStartSetting) belongs to the *user's* account: the admin of the account
the user belongs to chose it. When that user hosts or joins a meeting (Zoom's `meeting.participant_joined`
webhook, the host included), for each app set to auto-start for them:

- the host's effective policy disables sharing with apps, or the meeting's "Share real-time meeting content with
  apps" toggle is off → nothing starts (recorded in the audit log);
- the user is in the host's account → the app starts with no request, and the host's panel shows "RTMS set to
  auto start";
- otherwise (an admin of another account set it) → a request to the host, as the user's own would be
  (sharing_requests.do_auto_request): her modal, grouped with the others, also when the panel says she does not
  require approval. The panel's toggle is ours, not Zoom's (docs/CONSENT.md rule 10): a start with the host's
  token on its word alone could start what Zoom's setting would have asked the host about, and the user, who has
  not opened the app, has no client whose in-client start would let Zoom decide;
- either way, a stop someone chose in this meeting (the host disabled the app or turned sharing off, its user
  stopped it) stands: the host's join runs this again for everyone present, on a reconnect or Zoom's retry of the
  delivery, and nothing starts or is asked again (recorded in the audit log).
"""

import logging
from dataclasses import dataclass

from celery import shared_task
from django.db import transaction
from django.dispatch import receiver

from zoomapp.consent import meetings, policy
from zoomapp.consent.actions import presence, sharing_requests
from zoomapp.consent.models import Meeting, Participant
from zoomapp.consent.permissions import Refused
from zoomapp.console.models import AutoStartSetting
from zoomapp.marketplace.models import ZoomApp
from zoomapp.webhooks import meeting_events
from zoomapp.webhooks.signals import zoom_event

log = logging.getLogger("zoomapp.autostart")


@dataclass(frozen=True)
class EffectiveAutoStart:
    on: bool
    level: str  # "user", "group", "account", or "default" (nothing set: Off)
    target_id: str


class AutoStartRows:
    """An account's auto-start rows of several apps, read in one query, each app's as `policy.LevelRows`."""

    def __init__(self, account_id, rows):
        by_app = {}
        for app_id, *row in rows:
            by_app.setdefault(app_id, []).append(row)
        self.by_app = {app_id: policy.LevelRows(account_id, app_rows) for app_id, app_rows in by_app.items()}
        self.no_rows = policy.LevelRows(account_id, [])

    @classmethod
    def read(cls, account_id, apps, user_ids, group_ids):
        """The account's rows for `apps` that can apply to these users, in these groups."""
        rows = AutoStartSetting.objects.filter(account_id=account_id, app__in=[app.pk for app in apps])
        rows = policy.rows_that_apply(rows, account_id, user_ids, group_ids)
        return cls(account_id, rows.values_list("app_id", "level", "target_id", "auto_start"))

    def for_user(self, user_id, group_ids, app):
        """No row means Off."""
        return EffectiveAutoStart(*self.by_app.get(app.pk, self.no_rows).effective(user_id, group_ids, False))


def effective_auto_start(account_id, user_id, group_ids, app):
    return AutoStartRows.read(account_id, [app], [user_id], group_ids).for_user(user_id, group_ids, app)


# --- who the user is ----------------------------------------------------------------------------------------------


def user_account(user_id, app):
    """(account id, group ids) of a Zoom user, from verified sources only (docs/SECURITY.md): /v2/users/me when
    they authorized any of our apps (Zoom's answer to our own call), else the account of a meeting that `app`'s
    signed events say they hosted (then without groups): another app's events, or its leaked secret, never
    decide what this app starts. Never from a setting an admin wrote. ("", []) when unknown."""
    account_id, group_ids = policy.user_account_and_groups(user_id)
    if account_id:
        return account_id, group_ids
    hosted = (Meeting.objects.filter(app=app, host_user_id=user_id).exclude(account_id="")
              .order_by("-created").first())
    return (hosted.account_id, []) if hosted else ("", [])


# --- deciding, when someone hosts or joins ------------------------------------------------------------------------


def decide(app, meeting, user_id, name=""):
    """Rule 9 for one user and one app in one meeting. Returns what happened: "off", "started", "requested",
    "waiting_for_host" or "gated"."""
    account_id, group_ids = user_account(user_id, app)
    if not account_id:
        return "off"
    setting = effective_auto_start(account_id, user_id, group_ids, app)
    if not setting.on:
        return "off"
    detail = {"user_account_id": account_id, "setting_level": setting.level, "setting_target": setting.target_id}
    with transaction.atomic():
        # Decided on the meeting as it is under its lock, not as read before: a host who turned approval on
        # meanwhile (a host's join decides for everyone present, one after another) is asked.
        meeting = meetings.lock(meeting)
        same_account = account_id == meeting.account_id
        why = f"auto-start set by {'the host' if same_account else 'another'} account's admin ({setting.level} level)"
        if same_account:
            share = sharing_requests.do_auto_start(meeting, user_id, name, reason=why, detail=detail)
            outcome = "started" if share is not None else "gated"
        elif not meeting.host_present:
            # Rule 3: nothing is queued; the host's own join runs this again for everyone present.
            outcome = "waiting_for_host"
        else:
            share = sharing_requests.do_auto_request(meeting, user_id, name, reason=why, detail=detail)
            outcome = "requested" if share is not None else "gated"
    log.info("auto-start decided", extra={
        "meeting": meeting.uuid, "client_id": app.client_id, "user": user_id, "outcome": outcome,
        "same_account": same_account, "setting_level": setting.level})
    return outcome


@shared_task(name="consent.auto_start", acks_late=False, ignore_result=True, time_limit=60)
def auto_start_on_join(client_id, meeting_uuid, user_id, name, is_host, event_ts=None):
    """One user hosted or joined: their auto-start apps; when the host joined, also everyone already present
    (their other-account requests could not reach a host who was not there). A join Zoom made before the user's
    last leave (a late delivery, `event_ts`) starts nothing, as it changes nothing of their presence."""
    app = ZoomApp.by_client_id(client_id)
    meeting = Meeting.objects.filter(app=app, uuid=meeting_uuid).first() if app else None
    if app is None or meeting is None or meeting.ended_at is not None or presence.left_since(
            meeting, user_id, event_ts):
        return {}
    people = {user_id: name}
    if is_host:
        people.update(Participant.objects.filter(meeting=meeting, present=True).values_list("user_id", "name"))
    results = {}
    for person, person_name in people.items():
        try:
            results[person] = decide(app, meeting, person, person_name)
        except Refused as refused:
            results[person] = refused.code
    return results


@receiver(zoom_event, dispatch_uid="consent.autostart.join")
def on_zoom_event(sender, app=None, meeting_event=None, delivery=None, **kwargs):
    """Each app gets its own copy of every meeting event, so each delivery decides for its own app only. Users
    are looked up by their Zoom user id (participant.id), never by the per-meeting participant id."""
    if not isinstance(meeting_event, meeting_events.ParticipantJoined) or meeting_event.participant.is_guest:
        return  # guests have no admin settings
    person = meeting_event.participant
    auto_start_on_join.delay(app.client_id, meeting_event.meeting.uuid, person.zoom_user_id, person.name,
                             meeting_event.is_host, delivery.event_ts if delivery is not None else None)
