"""What the panel's actions push, through the panel's JSON API against the real database and Redis: each push is
captured on its way to the channel layer (the `pushes` fixture) and still sent.

A co-host decides as the host does (approve, deny, disable), and every panel of the meeting is sent the new state;
a pause or resume that Zoom's REST API cannot do goes to the app user's own panel as an SDK call.
"""

import pytest

from rtms import pushes
from tests.consent_support import meeting_uuid, open_panel, panel_action
from tests.processes import wait_for
from zoomapp.consent.models import AuditEntry, Share
from zoomapp.consent.panel_state import viewer_state

pytestmark = pytest.mark.django_db(transaction=True)


def meeting_group(app, uuid):
    return pushes.group_name("meeting", app.client_id, uuid)


def user_group(app, uuid, user_id):
    return pushes.group_name("user", app.client_id, uuid, user_id)


@pytest.fixture
def meeting(client, app):
    """Ana hosts, Cora is her co-host (as Zoom's app context says), Ben and Dee take part. Nobody authorized the
    app, so Zoom's REST API cannot be called for anyone."""
    uuid = meeting_uuid()
    people = {"ana": ("ana1", "host", "Ana"), "cora": ("cora1", "cohost", "Cora"),
              "ben": ("ben1", "participant", "Ben"), "dee": ("dee1", "participant", "Dee")}
    tokens = {who: open_panel(client, app, uuid, *person)[0] for who, person in people.items()}
    return {"uuid": uuid, **tokens}


def share_of(meeting, user_id):
    return Share.objects.get(meeting__uuid=meeting["uuid"], user_id=user_id)


def sharing(meeting, user_id, status="sharing"):
    """Zoom started the user's requested stream (what its rtms_started webhook would have recorded)."""
    share = share_of(meeting, user_id)
    Share.objects.filter(pk=share.pk).update(status=status, rtms_stream_id=f"{share.pk:032x}")
    return share


def decided_by(kind, user_id):
    return AuditEntry.objects.filter(kind=kind, actor_user_id=user_id).values_list("actor_role", "outcome").first()


def test_a_co_host_approves_denies_and_disables_like_the_host(client, app, meeting, pushes):
    for who in ("ben", "dee"):
        assert panel_action(client, app, meeting[who], action="request").status_code == 200
    # What Cora's panel socket is sent of the newest state pushed: the co-host sees every request, as the host does.
    pushed = max(pushes.to(meeting_group(app, meeting["uuid"]), "panel.state"), key=lambda m: m["state"]["version"])
    cora_sees = viewer_state(pushed["state"], "cora1")
    assert cora_sees["viewer"]["is_host"]
    requests = {r["user_id"]: r["id"] for r in cora_sees["requests"]}
    assert set(requests) == {"ben1", "dee1"}

    approved = panel_action(client, app, meeting["cora"], action="approve", requests=[requests["ben1"]])
    assert approved.status_code == 200, approved.content
    assert decided_by("approve", "cora1") == ("co-host", "starting")
    # REST cannot start it (no grant): Ben's own panel starts it through Zoom's client instead.
    wait_for(lambda: share_of(meeting, "ben1").start_path == "in_client", 10, "the in-client start")

    denied = panel_action(client, app, meeting["cora"], action="deny", requests=[requests["dee1"]])
    assert denied.status_code == 200, denied.content
    assert share_of(meeting, "dee1").status == "denied"
    assert decided_by("deny", "cora1") == ("co-host", "denied")

    ben = sharing(meeting, "ben1")
    disabled = panel_action(client, app, meeting["cora"], action="disable", share=ben.pk)
    assert disabled.status_code == 200, disabled.content
    assert share_of(meeting, "ben1").status == "disabled_by_host"
    assert decided_by("disable", "cora1") == ("co-host", "disabled_by_host")

    # Every decision reached every panel of the meeting as a whole new state. Two changes committed at once (a
    # co-host's decision, and Zoom's answer to our call recorded on the REST pool's thread, consent/zoom_calls.py)
    # may be pushed in either order, and both as the state read after the second: a panel applies only a newer
    # version, so what it shows is the newest state, and one version always carries one state.
    states = [m["state"] for m in pushes.to(meeting_group(app, meeting["uuid"]), "panel.state")]
    by_version = {}
    for state in states:
        shown = (state["shares"], state["requests"], state["meeting"])
        assert by_version.setdefault(state["version"], shown) == shown, state["version"]
    assert len(by_version) >= 4  # the requests, the approval, the denial and the disable, at least
    newest = max(states, key=lambda s: s["version"])
    assert {s["user_id"]: s["status"] for s in newest["shares"]} == {"ben1": "disabled_by_host", "dee1": "denied"}
    assert "cora1" in newest["hosts"]


def test_a_participant_cannot_decide_and_nothing_is_pushed(client, app, meeting, pushes):
    assert panel_action(client, app, meeting["ben"], action="request").status_code == 200
    request_id = share_of(meeting, "ben1").requests.get().id
    pushed = len(pushes.sent)
    refused = panel_action(client, app, meeting["dee"], action="approve", requests=[request_id])
    assert refused.status_code == 403
    assert refused.json() == {"error": "not_host", "message": "Only the meeting's host or a co-host can do this."}
    assert share_of(meeting, "ben1").status == "pending"
    assert len(pushes.sent) == pushed


@pytest.mark.parametrize("actor", ["ben", "ana"], ids=["the-apps-user", "the-host"])
def test_a_pause_rest_cannot_do_is_sent_to_the_apps_users_panel(client, app, meeting, pushes, actor):
    assert panel_action(client, app, meeting["ben"], action="request").status_code == 200
    ben = sharing(meeting, "ben1")
    response = panel_action(client, app, meeting[actor], action="pause", share=ben.pk)
    assert response.status_code == 200, response.content

    call = pushes.wait_for(user_group(app, meeting["uuid"], "ben1"), "panel.sdk_call")
    assert call == {"type": "panel.sdk_call", "api": "pauseRTMS", "share": ben.pk}
    for other in ("ana1", "cora1", "dee1"):  # Zoom pauses the invoking app's own stream: only Ben's panel can
        assert not pushes.to(user_group(app, meeting["uuid"], other), "panel.sdk_call")
    entry = wait_for(lambda: AuditEntry.objects.filter(kind="pause_in_client").first(), 10, "the audit entry")
    assert entry.reason.startswith("REST no_token") and entry.actor_user_id == f"{actor}1"
    assert share_of(meeting, "ben1").status == "sharing"  # paused only once Zoom says so


def test_a_resume_rest_cannot_do_is_sent_to_the_apps_users_panel(client, app, meeting, pushes):
    assert panel_action(client, app, meeting["ben"], action="request").status_code == 200
    ben = sharing(meeting, "ben1", status="paused")
    response = panel_action(client, app, meeting["ben"], action="resume", share=ben.pk)
    assert response.status_code == 200, response.content
    call = pushes.wait_for(user_group(app, meeting["uuid"], "ben1"), "panel.sdk_call")
    assert call == {"type": "panel.sdk_call", "api": "resumeRTMS", "share": ben.pk}


def test_an_attendee_opening_the_app_pushes_nothing_but_a_co_host_or_a_returning_one_does(client, app, meeting, pushes):
    """A large meeting's start opens the app everywhere: an attendee's panel changes what no other panel shows."""
    group = meeting_group(app, meeting["uuid"])
    before = len(pushes.to(group, "panel.state"))
    open_panel(client, app, meeting["uuid"], "eve1", "participant", "Eve")
    open_panel(client, app, meeting["uuid"], "ben1", "participant", "Ben")  # Ben again: a renewed context
    assert len(pushes.to(group, "panel.state")) == before
    open_panel(client, app, meeting["uuid"], "fay1", "cohost", "Fay")  # a new co-host: every panel's hosts change
    wait_for(lambda: len(pushes.to(group, "panel.state")) == before + 1, timeout=5)
