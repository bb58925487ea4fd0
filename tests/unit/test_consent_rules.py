"""docs/CONSENT.md's rules, through the do_* services: outcomes, who may act, the audit log, and the policy table."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from rtms.client.protocol import StopReason
from rtms.models import StreamSession
from tests.consent_support import make_app, meeting_uuid
from zoomapp.consent import meetings, panel_state, permissions, policy, push
from zoomapp.consent.actions import host_controls, presence, sharing_requests, streams
from zoomapp.consent.models import AuditEntry, Meeting, Participant, Share, SharingPolicy
from zoomapp.consent.permissions import Actor, Refused

pytestmark = pytest.mark.django_db

HOST, BEN, CLEO = Actor("host1", "Ana", "test"), Actor("ben1", "Ben", "test"), Actor("cleo1", "Cleo", "test")
DAN = Actor("dan1", "Dan", "test")


@pytest.fixture
def meeting(app):
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id=HOST.user_id, account_id="acct1")
    presence.do_participant_joined(meeting, BEN.user_id, "Ben")
    presence.do_participant_joined(meeting, CLEO.user_id, "Cleo")
    return meeting


def joined(meeting):
    return presence.do_host_joined(meeting, HOST.user_id, "Ana")


def status(meeting, app, actor):
    return Share.objects.get(meeting=meeting, app=app, user_id=actor.user_id).status


def test_rule1_admin_policy_off_means_host_cannot_approve(app, meeting):
    joined(meeting)
    SharingPolicy.objects.create(account_id="acct1", level="account", target_id="acct1", share_with_apps=False)
    sharing_requests.do_request(meeting, actor=BEN)
    assert status(meeting, app, BEN) == "host_cannot_approve"


def test_rule2_toggle_off_means_apps_disabled(app, meeting):
    joined(meeting)
    host_controls.do_set_toggles(meeting, share_with_apps=False, actor=HOST)
    sharing_requests.do_request(meeting, actor=BEN)
    assert status(meeting, app, BEN) == "apps_disabled"


def test_rule3_host_not_joined_queues_nothing_and_says_so_when_the_host_joins(app, meeting):
    sharing_requests.do_request(meeting, actor=BEN)
    assert status(meeting, app, BEN) == "host_not_joined"
    assert not panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))["requests"]
    joined(meeting)
    assert status(meeting, app, BEN) == "host_joined"


def test_rule3_when_nothing_named_the_host_zoom_says_whether_she_has_joined(app):
    """No meeting event reached the app (Zoom may send them only for hosts who added it) and the host has not
    opened the panel: the app cannot tell that she has not joined, so Ben's request goes to Zoom as an in-client
    start, and Zoom's answer gives rule 3's outcome when she is not there."""
    meeting = meetings.get_meeting(app, meeting_uuid())
    sharing_requests.do_request(meeting, actor=BEN)
    share = Share.objects.get(meeting=meeting, user_id=BEN.user_id)
    assert (share.status, share.start_path) == ("starting", "in_client")
    sharing_requests.do_zoom_request_status(meeting, BEN.user_id, "host_not_joined")
    assert status(meeting, app, BEN) == "host_not_joined"


def test_rule4_no_approval_needed_starts_at_once(app, meeting):
    joined(meeting)
    host_controls.do_set_toggles(meeting, require_host_approval=False, actor=HOST)
    sharing_requests.do_request(meeting, actor=BEN)
    share = Share.objects.get(meeting=meeting, user_id=BEN.user_id)
    # No host's token is used for what the host did not approve: Ben's own panel asks Zoom (rule 10).
    assert (share.status, share.started_by, share.start_path) == ("starting", "host", "in_client")


@pytest.mark.parametrize("zoom_says, outcome, toggles", [
    ("denied", "denied", (True, True)),  # Zoom asked the host: its approval is on, whatever our panel said
    ("apps_disabled", "apps_disabled", (False, False)),  # Zoom's sharing is off: the meeting's toggle follows
    ("host_cannot_approve", "host_cannot_approve", (True, False)),
    ("concurrency_limited", "stream_limit", (True, False)),
])
def test_zooms_answer_to_an_in_client_request_names_its_real_cause(app, meeting, zoom_says, outcome, toggles):
    joined(meeting)
    share = _in_client_start(meeting, BEN)
    sharing_requests.do_zoom_request_status(meeting, BEN.user_id, zoom_says)
    share.refresh_from_db()
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert share.status == outcome
    assert (state["meeting"]["share_with_apps"], state["meeting"]["require_host_approval"]) == toggles


def test_zoom_waiting_for_the_host_means_zoom_requires_approval_and_the_panel_says_so(app, meeting):
    joined(meeting)
    share = _in_client_start(meeting, BEN)  # our panel said no approval
    sharing_requests.do_zoom_request_status(meeting, BEN.user_id, "pending")
    share.refresh_from_db()
    assert share.status == "pending"
    assert Meeting.objects.get(pk=meeting.pk).require_host_approval  # Zoom's setting, mirrored
    entry = AuditEntry.objects.filter(kind="set_toggles", meeting_uuid=meeting.uuid).first()  # newest first
    assert entry.detail == {"require_host_approval": True} and entry.reason == "Zoom's host settings"


def test_zooms_answer_never_rewrites_a_stream_that_runs(app, meeting):
    joined(meeting)
    _in_client_start(meeting, BEN)
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "active")
    sharing_requests.do_zoom_request_status(meeting, BEN.user_id, "denied")
    assert status(meeting, app, BEN) == "sharing"


def test_a_late_pending_never_takes_a_decided_request_back(app, meeting):
    """Zoom retries deliveries and its events of different kinds arrive out of order: a "pending" delivered after
    the host's "denied" is late (docs/CONSENT.md "Starting and stopping")."""
    joined(meeting)
    _in_client_start(meeting, BEN)
    sharing_requests.do_zoom_request_status(meeting, BEN.user_id, "denied")
    entries = AuditEntry.objects.count()
    sharing_requests.do_zoom_request_status(meeting, BEN.user_id, "pending")
    assert status(meeting, app, BEN) == "denied"
    assert AuditEntry.objects.count() == entries


def test_zooms_answer_after_the_meeting_ended_changes_nothing(app, meeting):
    joined(meeting)
    _in_client_start(meeting, BEN)
    presence.do_meeting_ended(meeting)
    entries = AuditEntry.objects.count()
    sharing_requests.do_zoom_request_status(meeting, BEN.user_id, "pending")
    assert status(meeting, app, BEN) == "stopped"
    assert not Meeting.objects.get(pk=meeting.pk).require_host_approval  # no toggle moved on an ended meeting
    assert AuditEntry.objects.count() == entries


def _in_client_start(meeting, actor):
    host_controls.do_set_toggles(meeting, require_host_approval=False, actor=HOST)
    sharing_requests.do_request(meeting, actor=actor)
    return Share.objects.get(meeting=meeting, user_id=actor.user_id)


def test_rule4_a_host_requesting_starts_at_once(app, meeting):
    joined(meeting)
    sharing_requests.do_request(meeting, actor=HOST)
    assert status(meeting, app, HOST) == "starting"


def test_rule5_single_then_multiple_requests_for_the_host(app, meeting):
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    assert status(meeting, app, BEN) == "pending"
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert [r["user_name"] for r in state["requests"]] == ["Ben"]
    sharing_requests.do_request(meeting, actor=CLEO)
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert [r["user_name"] for r in state["requests"]] == ["Ben", "Cleo"]


def test_the_multiple_apps_modal_shows_other_apps_requests_to_a_host_of_both_read_only(app, meeting):
    """Each app keeps its own meeting row; a host that both apps' verified inputs name sees the other app's
    requests (docs/SECURITY.md "Tenancy"), without the ids to decide on them from this app's panel."""
    joined(meeting)
    other_app = make_app("Summariser")
    seen_by_other = meetings.get_meeting(other_app, meeting.uuid, host_user_id=HOST.user_id, account_id="acct1")
    presence.do_host_joined(seen_by_other, HOST.user_id, "Ana")
    presence.do_participant_joined(seen_by_other, BEN.user_id, "Ben")
    sharing_requests.do_request(seen_by_other, actor=BEN)
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert state["requests"] == []
    for_host = panel_state.viewer_state(state, HOST.user_id)
    assert for_host["other_apps"] == [
        {"app": other_app.client_id, "app_name": "Summariser", "requests": [{"user_id": "ben1", "user_name": "Ben"}]}
    ]
    assert panel_state.viewer_state(state, BEN.user_id)["other_apps"] == []


def test_asking_twice_changes_nothing(app, meeting):
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    version = Meeting.objects.get(pk=meeting.pk).version
    sharing_requests.do_request(meeting, actor=BEN)
    assert Meeting.objects.get(pk=meeting.pk).version == version


def test_rule6_approve_starts_and_deny_refuses(app, meeting):
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    sharing_requests.do_request(meeting, actor=CLEO)
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    ben_request, cleo_request = (r["id"] for r in state["requests"])
    sharing_requests.do_approve(meeting, [ben_request], actor=HOST)
    sharing_requests.do_deny(meeting, [cleo_request], actor=HOST)
    assert status(meeting, app, BEN) == "starting"
    assert status(meeting, app, CLEO) == "denied"


def test_approve_all_and_deny_all(app, meeting):
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    sharing_requests.do_request(meeting, actor=CLEO)
    assert sharing_requests.do_deny(meeting, actor=HOST) == 2
    assert {status(meeting, app, BEN), status(meeting, app, CLEO)} == {"denied"}
    sharing_requests.do_request(meeting, actor=BEN)
    sharing_requests.do_request(meeting, actor=CLEO)
    assert sharing_requests.do_approve(meeting, actor=HOST) == 2
    assert {status(meeting, app, BEN), status(meeting, app, CLEO)} == {"starting"}


def test_a_participant_cannot_decide_and_nothing_changes(app, meeting):
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    before = (Meeting.objects.get(pk=meeting.pk).version, AuditEntry.objects.count())
    for attempt in (lambda: sharing_requests.do_approve(meeting, actor=CLEO),
                    lambda: sharing_requests.do_deny(meeting, actor=BEN),
                    lambda: host_controls.do_set_toggles(meeting, share_with_apps=False, actor=BEN)):
        with pytest.raises(Refused) as refused:
            attempt()
        assert refused.value.code == "not_host"
    assert (Meeting.objects.get(pk=meeting.pk).version, AuditEntry.objects.count()) == before
    assert status(meeting, app, BEN) == "pending"


def test_an_action_reads_its_actors_role_once_for_the_check_and_the_audit_entry(app, meeting):
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)

    with CaptureQueriesContext(connection) as queries:
        sharing_requests.do_approve(meeting, actor=HOST)

    role_reads = [q["sql"] for q in queries.captured_queries
                  if 'FROM "consent_participant"' in q["sql"] and f"'{HOST.user_id}'" in q["sql"]]
    assert len(role_reads) == 1
    assert AuditEntry.objects.filter(kind="approve").values_list("actor_role", flat=True).get() == "host"


def test_a_request_is_audited_under_the_meetings_app_without_reading_the_app_again(app, meeting):
    joined(meeting)

    with CaptureQueriesContext(connection) as queries:
        sharing_requests.do_request(meeting, actor=BEN)

    assert not [q for q in queries.captured_queries if 'FROM "marketplace_zoomapp" WHERE' in q["sql"]]
    assert AuditEntry.objects.filter(kind="request").values_list("app", flat=True).get() == app.pk


def test_a_role_changed_within_a_change_of_the_meeting_is_read_again(app, meeting):
    with transaction.atomic():
        locked = meetings.lock(meeting)
        assert not permissions.is_host(locked, BEN.user_id)
        meetings.upsert_participant(locked, BEN.user_id, role=Participant.Role.CO_HOST)
        assert permissions.is_host(locked, BEN.user_id)


def _sharing(app, meeting, actor, stream_id):
    sharing_requests.do_request(meeting, actor=actor)
    sharing_requests.do_approve(meeting, actor=HOST)
    streams.do_stream_state(app.client_id, meeting.uuid, stream_id, actor.user_id, "starting")
    streams.do_stream_state(app.client_id, meeting.uuid, stream_id, actor.user_id, "active")
    return Share.objects.get(meeting=meeting, app=app, user_id=actor.user_id)


def test_zoom_confirming_a_rest_start_pushes_nothing_until_the_stream_is_active(
        app, meeting, pushes, django_capture_on_commit_callbacks):
    """Every panel shows "starting" from the approval on; Zoom's rtms_started adds only the stream's id."""
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    sharing_requests.do_approve(meeting, actor=HOST)
    group = push.meeting_group(app.client_id, meeting.uuid)
    version = Meeting.objects.get(pk=meeting.pk).version
    with django_capture_on_commit_callbacks(execute=True):
        streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "starting")
    assert Share.objects.get(meeting=meeting, user_id=BEN.user_id).rtms_stream_id == "s1"
    assert Meeting.objects.get(pk=meeting.pk).version == version + 1  # a version names one state
    assert pushes.to(group, "panel.state") == []
    with django_capture_on_commit_callbacks(execute=True):
        streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "active")
    [pushed] = pushes.to(group, "panel.state")
    assert pushed["state"]["version"] == version + 2
    assert [(s["status"], s["has_stream"]) for s in pushed["state"]["shares"]] == [("sharing", True)]


def test_sharing_once_data_flows_then_disclosure(app, meeting):
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    sharing_requests.do_approve(meeting, actor=HOST)
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "starting")
    assert status(meeting, app, BEN) == "starting"
    assert not panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))["disclosure"]
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "active")
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert status(meeting, app, BEN) == "sharing" and state["disclosure"]
    assert state["notices"] == [{"share": state["shares"][0]["id"], "kind": "host", "app_name": "Notes Bot",
                                 "user_name": "Ben"}]


def test_the_disclosure_stays_while_a_stream_is_interrupted(app, meeting):
    """Zoom reconnecting a stream: the app is still listed among "Apps actively sharing", so everyone still reads
    the disclosure, in this app's panels and in another app's of the same meeting."""
    joined(meeting)
    other_app = make_app("Other Bot")
    other_meeting = meetings.get_meeting(other_app, meeting.uuid, host_user_id=HOST.user_id, account_id="acct1")
    sharing_requests.do_request(meeting, actor=BEN)
    sharing_requests.do_approve(meeting, actor=HOST)
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "active")
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "interrupted")
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert [s["status"] for s in state["shares"]] == ["interrupted"]
    assert state["disclosure"]
    assert panel_state.meeting_state(Meeting.objects.get(pk=other_meeting.pk))["disclosure"]


def test_a_late_starting_announcement_does_not_undo_sharing(app, meeting):
    """The worker's claim goes out before the webhook announces "starting": the worker's "active" can land first."""
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    sharing_requests.do_approve(meeting, actor=HOST)
    StreamSession.objects.create(rtms_stream_id="s1", meeting_uuid=meeting.uuid, client_id=app.client_id,
                                 operator_id=BEN.user_id, state="active")
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "active")
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "starting")
    assert status(meeting, app, BEN) == "sharing"
    assert panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))["disclosure"]


@pytest.fixture
def calls_to_zoom(monkeypatch):
    """The calls to Zoom queued for after commit, by name (zoomapp.consent.zoom_calls), instead of run."""
    from zoomapp.consent import zoom_calls

    queued = []
    monkeypatch.setattr(zoom_calls, "after_commit", lambda fn, *args: queued.append(fn.__name__))
    return queued


@pytest.mark.parametrize("state", ["starting", "active"])
def test_a_stop_chosen_while_starting_stands_when_zoom_confirms_the_start(app, meeting, calls_to_zoom, state):
    """Approved, "Starting…", Ben stops it before Zoom named a stream (nothing to send Zoom yet): Zoom's
    rtms_started that follows must not start it again as an auto-start; the stream is stopped at once."""
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    sharing_requests.do_approve(meeting, actor=HOST)
    share = Share.objects.get(meeting=meeting, user_id=BEN.user_id)
    host_controls.do_stop(meeting, share.pk, actor=BEN)
    assert calls_to_zoom == ["start_via_rest"]
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, state)
    share.refresh_from_db()
    assert (share.status, share.stop_intent, share.rtms_stream_id) == ("stopped", "stopped", "s1")
    assert calls_to_zoom == ["start_via_rest", "stop_via_rest"]
    assert not panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))["notices"]  # no "set to auto start"


def test_a_stream_that_begins_after_the_meeting_ended_is_stopped(app, meeting, calls_to_zoom):
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    sharing_requests.do_approve(meeting, actor=HOST)
    presence.do_meeting_ended(meeting)
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "starting")
    share = Share.objects.get(meeting=meeting, user_id=BEN.user_id)
    assert (share.status, share.rtms_stream_id) == ("stopped", "s1")
    assert calls_to_zoom == ["start_via_rest", "stop_via_rest"]


def test_rule8_host_disables_one_app_and_zoom_reason_does_not_overwrite_it(app, meeting):
    joined(meeting)
    share = _sharing(app, meeting, BEN, "s1")
    host_controls.do_disable(meeting, share.pk, actor=HOST)
    assert status(meeting, app, BEN) == "disabled_by_host"
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "stopped", stop_reason=1)
    assert status(meeting, app, BEN) == "disabled_by_host"
    assert Share.objects.get(pk=share.pk).stop_reason == 1


def test_rule8_sharing_turned_off_stops_everything_and_withdraws_requests(app, meeting):
    joined(meeting)
    _sharing(app, meeting, BEN, "s1")
    sharing_requests.do_request(meeting, actor=CLEO)
    host_controls.do_set_toggles(meeting, share_with_apps=False, actor=HOST)
    assert status(meeting, app, BEN) == "apps_disabled"
    assert status(meeting, app, CLEO) == "apps_disabled"
    assert not panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))["requests"]


@pytest.mark.parametrize("zoom_says", ["stop reason 9", "request status apps_disabled"])
def test_rule8_zoom_turning_sharing_off_ends_every_request_and_stream_as_the_host_turning_it_off_does(
        app, meeting, calls_to_zoom, zoom_says):
    """The host turned "Share real-time meeting content with apps" off in Zoom's own controls: Zoom stops a stream
    with reason 9, or answers an in-client start "apps_disabled". Every app stops and every requester reads "Apps
    sharing meeting content have been disabled.", as when she turns it off in the panel; the host's modal no
    longer offers Approve."""
    joined(meeting)
    presence.do_participant_joined(meeting, DAN.user_id, "Dan")
    _sharing(app, meeting, BEN, "s1")
    _in_client_start(meeting, DAN)
    host_controls.do_set_toggles(meeting, require_host_approval=True, actor=HOST)
    sharing_requests.do_request(meeting, actor=CLEO)
    assert status(meeting, app, CLEO) == "pending"
    del calls_to_zoom[:]
    if zoom_says == "stop reason 9":
        streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "stopped",
                                stop_reason=StopReason.ALL_APPS_DISABLED)
    else:
        sharing_requests.do_zoom_request_status(meeting, DAN.user_id, "apps_disabled")
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert state["meeting"]["share_with_apps"] is False
    assert {s["user_id"]: s["status"] for s in state["shares"]} == {
        "ben1": "apps_disabled", "dan1": "apps_disabled", "cleo1": "apps_disabled"}
    assert state["requests"] == [] and not state["disclosure"]
    # Ben's stream, still running when Zoom answered Dan, is stopped; Zoom stopped it itself otherwise.
    assert calls_to_zoom == ([] if zoom_says == "stop reason 9" else ["stop_via_rest"])


def test_zooms_stop_of_a_stream_sharing_off_stopped_leaves_the_toggle_the_host_turned_on_again(
        app, meeting, calls_to_zoom):
    """Only Zoom's reason 9 says Zoom's own setting is off: the stop of a stream the host's "off" ended, arriving
    after she turned sharing on again, keeps the share's outcome and her toggle."""
    joined(meeting)
    _sharing(app, meeting, BEN, "s1")
    host_controls.do_set_toggles(meeting, share_with_apps=False, actor=HOST)
    host_controls.do_set_toggles(meeting, share_with_apps=True, actor=HOST)
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "stopped",
                            stop_reason=StopReason.HOST_TRIGGERED)
    assert status(meeting, app, BEN) == "apps_disabled"
    assert Meeting.objects.get(pk=meeting.pk).share_with_apps


@pytest.mark.parametrize("state", ["starting", "active"])
def test_rule8_a_stream_zoom_begins_while_sharing_is_off_is_stopped_and_reads_apps_disabled(
        app, meeting, calls_to_zoom, pushes, django_capture_on_commit_callbacks, state):
    """Zoom's own auto-start (or a start delivered late) begins a stream while the host has sharing off: it is
    stopped at once, and its user's panel says why instead of "Sharing"."""
    joined(meeting)
    host_controls.do_set_toggles(meeting, share_with_apps=False, actor=HOST)
    with django_capture_on_commit_callbacks(execute=True):
        streams.do_stream_state(app.client_id, meeting.uuid, "s9", BEN.user_id, state)
    share = Share.objects.get(meeting=meeting, user_id=BEN.user_id)
    assert (share.status, share.rtms_stream_id) == ("apps_disabled", "s9")
    assert calls_to_zoom == ["stop_via_rest"]
    [pushed] = pushes.to(push.meeting_group(app.client_id, meeting.uuid), "panel.state")
    assert [(s["user_id"], s["status"]) for s in pushed["state"]["shares"]] == [("ben1", "apps_disabled")]
    assert not pushed["state"]["disclosure"] and not pushed["state"]["notices"]


def _row_of(app, uuid, account_id="acct1"):
    """Another app's own row of the meeting, as its verified inputs filled it: Ana hosts, Ben and Cleo take part."""
    row = meetings.get_meeting(app, uuid, host_user_id=HOST.user_id, account_id=account_id)
    presence.do_participant_joined(row, BEN.user_id, "Ben")
    presence.do_participant_joined(row, CLEO.user_id, "Cleo")
    joined(row)
    return row


def _newest_shown(pushes, app, uuid):
    """What the app's panels in the meeting show: the newest version pushed to them."""
    states = [m["state"] for m in pushes.to(push.meeting_group(app.client_id, uuid), "panel.state")]
    return max(states, key=lambda state: state["version"])


def test_rule8_sharing_turned_off_in_one_apps_panel_stops_every_app_of_the_meeting_in_its_account(
        app, meeting, calls_to_zoom, pushes, django_capture_on_commit_callbacks):
    """"Share real-time meeting content with apps" is Zoom's setting of the whole meeting: turned off or on in
    Notes Bot's panel, the Recorder's panels show it too, and off stops the Recorder's stream and requests. A row
    of the meeting claimed for another account (a forged input can claim one) is not the host's to change."""
    joined(meeting)
    recorder, stranger = make_app("Recorder"), make_app("Stranger")
    recorders, strangers = _row_of(recorder, meeting.uuid), _row_of(stranger, meeting.uuid, account_id="acctX")
    _sharing(recorder, recorders, BEN, "r1")
    sharing_requests.do_request(recorders, actor=CLEO)
    _sharing(stranger, strangers, BEN, "x1")
    del calls_to_zoom[:]
    with django_capture_on_commit_callbacks(execute=True):
        host_controls.do_set_toggles(meeting, share_with_apps=False, actor=HOST)
    shown = _newest_shown(pushes, recorder, meeting.uuid)
    assert shown["version"] == Meeting.objects.get(pk=recorders.pk).version
    assert shown["meeting"]["share_with_apps"] is False
    assert {s["user_id"]: s["status"] for s in shown["shares"]} == {"ben1": "apps_disabled", "cleo1": "apps_disabled"}
    assert shown["requests"] == []
    assert calls_to_zoom == ["stop_via_rest"]  # the Recorder's stream
    theirs = panel_state.meeting_state(Meeting.objects.get(pk=strangers.pk))
    assert theirs["meeting"]["share_with_apps"] and [s["status"] for s in theirs["shares"]] == ["sharing"]

    with django_capture_on_commit_callbacks(execute=True):
        host_controls.do_set_toggles(meeting, share_with_apps=True, actor=HOST)
    shown = _newest_shown(pushes, recorder, meeting.uuid)
    assert shown["meeting"]["share_with_apps"] is True
    assert shown["version"] == Meeting.objects.get(pk=recorders.pk).version
    followed = AuditEntry.objects.filter(kind="set_toggles", app=recorder).values_list(
        "actor_user_id", "actor_role", "detail")
    assert list(followed) == [("host1", "host", {"share_with_apps": True}),
                              ("host1", "host", {"share_with_apps": False})]
    assert Meeting.objects.get(pk=strangers.pk).share_with_apps


def test_rule8_zoom_turning_sharing_off_for_one_app_turns_it_off_for_every_app_of_the_meeting_in_its_account(
        app, meeting, calls_to_zoom, pushes, django_capture_on_commit_callbacks):
    """Zoom stops the Recorder's stream with reason 9: Notes Bot's pending request ends too, and its host's panel
    shows sharing off."""
    joined(meeting)
    sharing_requests.do_request(meeting, actor=CLEO)
    recorder = make_app("Recorder")
    recorders = _row_of(recorder, meeting.uuid)
    _sharing(recorder, recorders, BEN, "r1")
    with django_capture_on_commit_callbacks(execute=True):
        streams.do_stream_state(recorder.client_id, meeting.uuid, "r1", BEN.user_id, "stopped",
                                stop_reason=StopReason.ALL_APPS_DISABLED)
    shown = _newest_shown(pushes, app, meeting.uuid)
    assert shown["meeting"]["share_with_apps"] is False
    assert [(s["user_id"], s["status"]) for s in shown["shares"]] == [("cleo1", "apps_disabled")]
    assert shown["requests"] == []


@pytest.mark.parametrize("account_id", ["acctX", ""], ids=["another account", "account not known"])
def test_the_toggle_never_moves_a_row_of_the_meeting_of_another_or_unknown_account(
        app, meeting, django_capture_on_commit_callbacks, account_id):
    joined(meeting)
    theirs = _row_of(make_app("Stranger"), meeting.uuid, account_id=account_id)
    with django_capture_on_commit_callbacks(execute=True):
        host_controls.do_set_toggles(meeting, share_with_apps=False, actor=HOST)
    assert Meeting.objects.get(pk=theirs.pk).share_with_apps
    with django_capture_on_commit_callbacks(execute=True):
        host_controls.do_set_toggles(meeting, share_with_apps=True, actor=HOST)
        host_controls.do_set_toggles(theirs, share_with_apps=False, actor=HOST)
    assert Meeting.objects.get(pk=meeting.pk).share_with_apps


@pytest.mark.parametrize("reason, outcome", [(5, "disabled_by_host"), (9, "apps_disabled"), (6, "stopped"),
                                             (2, "stopped"), (23, "host_cannot_approve"), (24, "stopped")])
def test_zoom_stop_reasons_become_outcomes(app, meeting, reason, outcome):
    joined(meeting)
    _sharing(app, meeting, BEN, "s1")
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "stopped", stop_reason=reason)
    assert status(meeting, app, BEN) == outcome


def test_pause_is_for_the_apps_user_or_a_host(app, meeting):
    joined(meeting)
    share = _sharing(app, meeting, BEN, "s1")
    with pytest.raises(Refused) as refused:
        host_controls.do_pause(meeting, share.pk, actor=CLEO)
    assert refused.value.code == "not_your_app"
    streams.do_stream_paused(meeting, "s1", paused=True)
    assert status(meeting, app, BEN) == "paused"
    streams.do_stream_paused(meeting, "s1", paused=False)
    assert status(meeting, app, BEN) == "sharing"


def test_user_stops_own_app(app, meeting):
    joined(meeting)
    share = _sharing(app, meeting, BEN, "s1")
    host_controls.do_stop(meeting, share.pk, actor=BEN)
    shown = Meeting.objects.get(pk=meeting.pk).version
    streams.do_stream_state(app.client_id, meeting.uuid, "s1", BEN.user_id, "stopped", stop_reason=2)
    assert status(meeting, app, BEN) == "stopped"
    # Zoom's confirmation is audited with its reason, and changes nothing the panels show: nothing is pushed.
    assert AuditEntry.objects.filter(kind="stream_stopped", reason="USER_TRIGGERED").exists()
    assert Meeting.objects.get(pk=meeting.pk).version == shown


def test_a_stream_with_no_request_behind_it_is_an_auto_start(app, meeting):
    joined(meeting)
    streams.do_stream_state(app.client_id, meeting.uuid, "s9", CLEO.user_id, "active")
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert state["notices"][0]["kind"] == "auto" and status(meeting, app, CLEO) == "sharing"


def test_continuous_sharing_keeps_the_app_when_its_user_leaves(app, meeting):
    joined(meeting)
    _sharing(app, meeting, BEN, "s1")
    presence.do_person_left(meeting, BEN.user_id)
    assert status(meeting, app, BEN) == "sharing"


def test_meeting_end_stops_everything(app, meeting):
    joined(meeting)
    _sharing(app, meeting, BEN, "s1")
    sharing_requests.do_request(meeting, actor=CLEO)
    presence.do_meeting_ended(meeting)
    assert status(meeting, app, BEN) == "stopped" and status(meeting, app, CLEO) == "stopped"
    with pytest.raises(Refused):
        sharing_requests.do_request(meeting, actor=CLEO)


def test_a_share_of_another_meeting_cannot_be_touched(app, meeting):
    joined(meeting)
    share = _sharing(app, meeting, BEN, "s1")
    other = meetings.get_meeting(app, meeting_uuid(), host_user_id="otherHost")
    presence.do_host_joined(other, "otherHost")
    with pytest.raises(Refused) as refused:
        host_controls.do_disable(other, share.pk, actor=Actor("otherHost"))
    assert refused.value.code == "unknown_share"
    assert status(meeting, app, BEN) == "sharing"


def test_every_decision_is_audited_and_the_log_is_append_only(app, meeting):
    joined(meeting)
    sharing_requests.do_request(meeting, actor=BEN)
    sharing_requests.do_deny(meeting, actor=HOST)
    kinds = list(AuditEntry.objects.filter(meeting_uuid=meeting.uuid).order_by("id").values_list("kind", flat=True))
    assert kinds == ["host_joined", "request", "deny"]
    deny = AuditEntry.objects.get(meeting_uuid=meeting.uuid, kind="deny")
    assert (deny.actor_user_id, deny.actor_role, deny.subject_user_id, deny.outcome) == (
        "host1", "host", "ben1", "denied")
    with pytest.raises(PermissionDenied):
        deny.save()
    with pytest.raises(PermissionDenied):
        deny.delete()
    with pytest.raises(PermissionDenied):
        AuditEntry.objects.filter(pk=deny.pk).update(reason="edited")
    with pytest.raises(PermissionDenied):
        AuditEntry.objects.all().delete()


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([], (True, "default")),
        ([("account", "acct1", False)], (False, "account")),
        ([("account", "acct1", False), ("group", "g1", True)], (True, "group")),
        ([("account", "acct1", True), ("group", "g1", False)], (False, "group")),
        ([("account", "acct1", True), ("group", "g1", False), ("user", "host1", True)], (True, "user")),
        ([("account", "acct1", False), ("user", "host1", False), ("group", "g1", True)], (False, "user")),
        ([("group", "g2", False)], (True, "default")),  # a group the host is not in
        ([("account", "otherAcct", False)], (True, "default")),  # another account's setting
    ],
)
def test_policy_precedence_user_over_group_over_account(rows, expected):
    for level, target, value in rows:
        account = "otherAcct" if target == "otherAcct" else "acct1"
        SharingPolicy.objects.create(account_id=account, level=level, target_id=target, share_with_apps=value)
    effective = policy.effective_sharing_policy("acct1", "host1", ["g1"])
    assert (effective.share_with_apps, effective.level) == expected


def test_auto_start_needs_no_request_and_is_announced_as_auto(app, meeting):
    joined(meeting)
    share = sharing_requests.do_auto_start(meeting, CLEO.user_id, "Cleo", reason="admin setting")
    assert (share.status, share.started_by) == ("starting", "auto")
    streams.do_stream_state(app.client_id, meeting.uuid, "s5", CLEO.user_id, "active")
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    assert state["notices"][0]["kind"] == "auto" and not state["requests"]


def test_auto_start_is_gated_by_the_toggle(app, meeting):
    joined(meeting)
    host_controls.do_set_toggles(meeting, share_with_apps=False, actor=HOST)
    assert sharing_requests.do_auto_start(meeting, CLEO.user_id, "Cleo") is None
    assert AuditEntry.objects.filter(meeting_uuid=meeting.uuid, kind="auto_start", outcome="skipped").exists()
