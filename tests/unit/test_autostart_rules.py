"""docs/CONSENT.md rule 9, decided for one joining user (zoomapp.consent.autostart.decide).

Same account → the app starts with no request and the host's AAN is "RTMS set to auto start"; another account's
admin → as the user's own request: the host's request modal when she requires approval, else Zoom decides.
(The end-to-end version, with the simulator, a worker and browsers, is tests/e2e/test_autostart.py.)
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.consent_support import make_app, meeting_uuid
from zoomapp.consent import autostart, meetings, panel_state, zoom_calls
from zoomapp.consent.actions import host_controls, presence, sharing_requests, streams
from zoomapp.consent.models import AuditEntry, Meeting, Share, ShareRequest
from zoomapp.consent.permissions import Actor
from zoomapp.console import changes
from zoomapp.console.auth import ConsoleAdmin
from zoomapp.console.models import AutoStartSetting
from zoomapp.marketplace.models import UserAuthorization

pytestmark = pytest.mark.django_db

HOST_ACCOUNT, OTHER_ACCOUNT = "acctHost", "acctGuest"
HOST_ADMIN = ConsoleAdmin("admH", HOST_ACCOUNT, "Admin", "Hilda", "cid")
OTHER_ADMIN = ConsoleAdmin("admO", OTHER_ACCOUNT, "Owner", "Olaf", "cid")


@pytest.fixture
def app():
    return make_app("Notetaker")


def authorized(app, user_id, account_id, groups=()):
    UserAuthorization.objects.create(app=app, user_id=user_id, account_id=account_id, group_ids=list(groups),
                                     role_name="Member", access_token="a", refresh_token="r",
                                     expires_at=timezone.now() + timedelta(hours=1))


def meeting_with_host(app, require_approval=True, host_present=True):
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id="host1", account_id=HOST_ACCOUNT)
    if host_present:
        presence.do_host_joined(meeting, "host1", "Hana")
    if not require_approval:
        host_controls.do_set_toggles(meeting, require_host_approval=False, actor=Actor("host1"))
    return Meeting.objects.get(pk=meeting.pk)


def share(meeting, app, user_id):
    return Share.objects.get(meeting=meeting, app=app, user_id=user_id)


def test_same_account_starts_with_no_request_and_the_host_sees_set_to_auto_start(app):
    authorized(app, "sam", HOST_ACCOUNT, ["sales"])
    changes.set_auto_start(HOST_ADMIN, app, "group", "sales", True)
    meeting = meeting_with_host(app, require_approval=True)
    assert autostart.decide(app, meeting, "sam", "Sam") == "started"
    row = share(meeting, app, "sam")
    assert (row.status, row.started_by) == ("starting", "auto")
    assert not ShareRequest.objects.filter(share=row).exists()
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert state["notices"] == [{"share": row.id, "kind": "auto", "app_name": "Notetaker", "user_name": "Sam"}]
    assert not state["requests"]


def test_the_host_auto_starting_in_their_own_meeting(app):
    authorized(app, "host1", HOST_ACCOUNT)
    changes.set_auto_start(HOST_ADMIN, app, "account", "", True)
    meeting = meeting_with_host(app)
    assert autostart.decide(app, meeting, "host1", "Hana") == "started"
    assert share(meeting, app, "host1").started_by == "auto"


def test_other_account_with_approval_required_asks_the_host(app):
    authorized(app, "olga", OTHER_ACCOUNT)
    changes.set_auto_start(OTHER_ADMIN, app, "user", "olga", True)
    meeting = meeting_with_host(app, require_approval=True)
    presence.do_participant_joined(meeting, "olga", "Olga")
    assert autostart.decide(app, meeting, "olga", "Olga") == "requested"
    request = ShareRequest.objects.get(share=share(meeting, app, "olga"))
    assert (request.status, request.source) == ("pending", "auto")
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert [(r["user_id"], r["source"]) for r in state["requests"]] == [("olga", "auto")]
    # Approved, it is still an auto-started app for the host's notices.
    sharing_requests.do_approve(meeting, [request.id], actor=Actor("host1"))
    assert share(meeting, app, "olga").started_by == "auto"


def test_turning_approval_off_starts_a_waiting_auto_start_as_auto_started(app):
    """The toggle approves through the same path as Approve: the host's notice still says "set to auto start"."""
    authorized(app, "olga", OTHER_ACCOUNT)
    changes.set_auto_start(OTHER_ADMIN, app, "user", "olga", True)
    meeting = meeting_with_host(app, require_approval=True)
    presence.do_participant_joined(meeting, "olga", "Olga")
    assert autostart.decide(app, meeting, "olga", "Olga") == "requested"
    host_controls.do_set_toggles(meeting, require_host_approval=False, actor=Actor("host1"))
    row = share(meeting, app, "olga")
    assert (row.status, row.started_by) == ("starting", "auto")
    entry = AuditEntry.objects.get(kind="approve", meeting_uuid=meeting.uuid)
    assert entry.reason == "host approval no longer required"


def test_other_account_with_approval_off_in_the_panel_asks_the_host(app, monkeypatch):
    """The panel's "Require host approval" is ours, not Zoom's (rule 10): only Zoom knows whether its host asks,
    so the host's token never starts it on the panel's word. Pia's own request lets Zoom decide through her
    client's in-client start; Olga has not opened the app, so there is no client of hers to ask Zoom through (a
    start left waiting for it would fail as "Host cannot approve…" two minutes later): the host is asked."""
    rest_starts = []
    monkeypatch.setattr(zoom_calls, "after_commit", lambda call, *args: rest_starts.append(call.__name__))
    authorized(app, "olga", OTHER_ACCOUNT)
    changes.set_auto_start(OTHER_ADMIN, app, "account", "", True)
    meeting = meeting_with_host(app, require_approval=False)
    presence.do_participant_joined(meeting, "olga", "Olga")
    presence.do_participant_joined(meeting, "pia", "Pia")
    assert autostart.decide(app, meeting, "olga", "Olga") == "requested"
    sharing_requests.do_request(meeting, actor=Actor("pia", "Pia", "test"))
    olga, pia = share(meeting, app, "olga"), share(meeting, app, "pia")
    assert olga.status == "pending" and (pia.status, pia.start_path) == ("starting", "in_client")
    assert rest_starts == []  # no start with the host's token was queued for either
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert [(r["user_id"], r["source"]) for r in state["requests"]] == [("olga", "auto")]


def test_other_account_waits_for_the_host_and_nothing_is_queued(app):
    authorized(app, "olga", OTHER_ACCOUNT)
    changes.set_auto_start(OTHER_ADMIN, app, "account", "", True)
    meeting = meeting_with_host(app, host_present=False)
    assert autostart.decide(app, meeting, "olga", "Olga") == "waiting_for_host"
    assert not Share.objects.filter(meeting=meeting).exists()


def test_off_for_the_user_means_nothing_happens(app):
    authorized(app, "sam", HOST_ACCOUNT)
    changes.set_auto_start(HOST_ADMIN, app, "account", "", True)
    changes.set_auto_start(HOST_ADMIN, app, "user", "sam", False)
    assert autostart.decide(app, meeting_with_host(app), "sam", "Sam") == "off"


def test_the_hosts_sharing_policy_still_gates_an_auto_start(app):
    authorized(app, "sam", HOST_ACCOUNT)
    changes.set_auto_start(HOST_ADMIN, app, "account", "", True)
    changes.set_sharing_policy(HOST_ADMIN, "user", "host1", False)
    meeting = meeting_with_host(app)
    assert autostart.decide(app, meeting, "sam", "Sam") == "gated"
    entry = AuditEntry.objects.get(kind="auto_start", meeting_uuid=meeting.uuid)
    assert entry.outcome == "skipped" and "admin policy disables sharing" in entry.reason


def test_a_user_who_hosted_a_meeting_of_the_account_is_known_by_that_meeting(app):
    changes.set_auto_start(HOST_ADMIN, app, "user", "host1", True)  # the host never authorized any app
    meeting = meeting_with_host(app)  # Zoom's events say host1 hosts a meeting of HOST_ACCOUNT
    assert autostart.user_account("host1", app) == (HOST_ACCOUNT, [])
    assert autostart.decide(app, meeting, "host1", "Hana") == "started"


def test_a_setting_an_admin_wrote_never_makes_a_user_known(app):
    AutoStartSetting.objects.create(account_id=HOST_ACCOUNT, level="user", target_id="stranger", app=app,
                                    auto_start=True)  # a row from before the console checked who it names
    assert autostart.user_account("stranger", app) == ("", [])
    assert autostart.decide(app, meeting_with_host(app), "stranger", "Sid") == "off"


def test_a_meeting_another_apps_events_say_a_user_hosted_does_not_make_them_known(app):
    """Only Zoom's answer to our own call (an OAuth grant) or this app's signed events: another app's events, or
    its leaked secret, cannot make this app start for someone."""
    recorder = make_app("Recorder")
    meetings.get_meeting(recorder, meeting_uuid(), host_user_id="olga", account_id=HOST_ACCOUNT)
    changes.set_auto_start(HOST_ADMIN, app, "account", "", True)
    assert autostart.user_account("olga", app) == ("", [])
    meeting = meeting_with_host(app)
    assert autostart.decide(app, meeting, "olga", "Olga") == "off"
    assert not Share.objects.filter(meeting=meeting, user_id="olga").exists()


def test_approval_the_host_turned_on_after_the_meeting_was_read_is_asked_for(app):
    authorized(app, "olga", OTHER_ACCOUNT)
    changes.set_auto_start(OTHER_ADMIN, app, "account", "", True)
    read_before = meeting_with_host(app, require_approval=False)
    host_controls.do_set_toggles(read_before, require_host_approval=True, actor=Actor("host1"))
    assert autostart.decide(app, read_before, "olga", "Olga") == "requested"
    assert share(read_before, app, "olga").status == "pending"


@pytest.mark.parametrize("chosen, how", [("disabled_by_host", "panel"), ("apps_disabled", "panel"),
                                         ("stopped", "panel"), ("stopped", "zoom")])
def test_a_hosts_join_again_never_restarts_what_someone_stopped_in_this_meeting(app, chosen, how):
    """The host reconnects (or Zoom delivers the join again): auto-start runs for everyone present, and a stop
    someone chose in this meeting stands (docs/CONSENT.md rule 9)."""
    authorized(app, "sam", HOST_ACCOUNT)
    changes.set_auto_start(HOST_ADMIN, app, "account", "", True)
    meeting = meeting_with_host(app)
    presence.do_participant_joined(meeting, "sam", "Sam")
    assert autostart.decide(app, meeting, "sam", "Sam") == "started"
    row, host = share(meeting, app, "sam"), Actor("host1")
    if chosen == "disabled_by_host":
        host_controls.do_disable(meeting, row.pk, actor=host)
    elif chosen == "apps_disabled":
        host_controls.do_set_toggles(meeting, share_with_apps=False, actor=host)
        host_controls.do_set_toggles(meeting, share_with_apps=True, actor=host)
    elif how == "panel":
        host_controls.do_stop(meeting, row.pk, actor=Actor("sam", "Sam"))
    else:  # Sam stopped it in Zoom's own controls: Zoom's stop reason says so
        streams.do_stream_state(app.client_id, meeting.uuid, "s1", "sam", "active")
        streams.do_stream_state(app.client_id, meeting.uuid, "s1", "sam", "stopped", stop_reason=2)
    assert autostart.auto_start_on_join(app.client_id, meeting.uuid, "host1", "Hana", True)["sam"] == "gated"
    assert share(meeting, app, "sam").status == chosen
    entry = AuditEntry.objects.filter(kind="auto_start", meeting_uuid=meeting.uuid, subject_user_id="sam").first()
    assert entry.outcome == "skipped" and f"{chosen} in this meeting" in entry.reason


def test_a_hosts_join_again_never_asks_again_for_what_the_host_disabled(app):
    authorized(app, "olga", OTHER_ACCOUNT)
    changes.set_auto_start(OTHER_ADMIN, app, "account", "", True)
    meeting = meeting_with_host(app, require_approval=True)
    presence.do_participant_joined(meeting, "olga", "Olga")
    assert autostart.decide(app, meeting, "olga", "Olga") == "requested"
    sharing_requests.do_approve(meeting, actor=Actor("host1"))
    host_controls.do_disable(meeting, share(meeting, app, "olga").pk, actor=Actor("host1"))
    assert autostart.auto_start_on_join(app.client_id, meeting.uuid, "host1", "Hana", True)["olga"] == "gated"
    assert share(meeting, app, "olga").status == "disabled_by_host"
    assert not ShareRequest.objects.filter(share__meeting=meeting, status="pending").exists()


def test_a_join_delivered_after_a_later_leave_starts_nothing(app):
    """Zoom retries a join answered late minutes after: by then the user had left (Zoom's later event). The join
    changes nothing of their presence, and starts nothing either."""
    authorized(app, "sam", HOST_ACCOUNT)
    changes.set_auto_start(HOST_ADMIN, app, "account", "", True)
    meeting = meeting_with_host(app)
    presence.do_participant_joined(meeting, "sam", "Sam", event_ts=1_000)
    presence.do_person_left(meeting, "sam", is_host=False, event_ts=2_000)
    assert autostart.auto_start_on_join(app.client_id, meeting.uuid, "sam", "Sam", False, event_ts=1_500) == {}
    assert not Share.objects.filter(meeting=meeting, user_id="sam").exists()
    assert autostart.auto_start_on_join(app.client_id, meeting.uuid, "sam", "Sam", False, event_ts=3_000) == {
        "sam": "started"}
