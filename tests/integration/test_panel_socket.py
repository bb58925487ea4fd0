"""The panel WebSocket (real URL router, real Redis channel layer): snapshot on connect, live pushes with
versions, refusals for non-hosts and for other meetings, and fuzzed frames that change nothing."""

import json

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.consent_support import connect_panel, make_app, meeting_uuid
from zoomapp.consent import meetings, tokens
from zoomapp.consent.actions import presence, sharing_requests
from zoomapp.consent.models import AuditEntry, Meeting
from zoomapp.consent.permissions import Actor

pytestmark = pytest.mark.django_db(transaction=True)


def setup_meeting(app):
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id="host1")
    presence.do_host_joined(meeting, "host1", "Ana")
    presence.do_participant_joined(meeting, "ben1", "Ben")
    return meeting


async def receive(communicator, kind="state", timeout=5):
    while True:
        message = json.loads(await communicator.receive_from(timeout=timeout))
        if message["type"] == kind:
            return message


async def test_snapshot_then_live_pushes_with_rising_versions():
    app = await sync_to_async(make_app)()
    meeting = await sync_to_async(setup_meeting)(app)
    host = await connect_panel(tokens.mint(app.client_id, meeting.uuid, "host1"))
    ben = await connect_panel(tokens.mint(app.client_id, meeting.uuid, "ben1"))
    host_snapshot, ben_snapshot = await receive(host), await receive(ben)
    assert host_snapshot["state"]["viewer"]["is_host"] and not ben_snapshot["state"]["viewer"]["is_host"]

    await ben.send_to(text_data=json.dumps({"action": "request"}))
    # The push and the acknowledgement travel separately: either may come first.
    seen = {}
    while len(seen) < 2:
        message = json.loads(await ben.receive_from(timeout=5))
        seen[message["type"]] = message
    assert seen["done"]["action"] == "request"
    pushed_to_host, pushed_to_ben = await receive(host), seen["state"]
    assert pushed_to_host["state"]["version"] > host_snapshot["state"]["version"]
    assert [r["user_name"] for r in pushed_to_host["state"]["requests"]] == ["Ben"]
    assert pushed_to_ben["state"]["shares"][0]["status"] == "pending"
    assert pushed_to_ben["state"]["notices"] == []  # AAN are for hosts
    await host.disconnect()
    await ben.disconnect()


async def test_every_panel_ends_on_the_newest_state_after_a_burst_of_changes():
    """A web process writes a meeting's states to its panels from one task, the newest overtaking older ones still
    being written: each panel still sees versions only rise, and ends on the newest."""
    app = await sync_to_async(make_app)()
    meeting = await sync_to_async(setup_meeting)(app)
    panels = [await connect_panel(tokens.mint(app.client_id, meeting.uuid, viewer)) for viewer in ("host1", "ben1", "")]
    snapshots = [await receive(panel) for panel in panels]

    def co_hosts_join():
        for i in range(8):
            presence.do_role_changed(meeting, f"cohost{i}", f"Co-host {i}", "co-host")
        return Meeting.objects.get(pk=meeting.pk).version

    newest = await sync_to_async(co_hosts_join)()
    for panel, snapshot in zip(panels, snapshots):
        versions, state = [snapshot["state"]["version"]], snapshot["state"]
        while versions[-1] < newest:
            state = (await receive(panel))["state"]
            versions.append(state["version"])
        assert versions == sorted(set(versions)) and versions[-1] == newest
        assert {f"cohost{i}" for i in range(8)} <= set(state["hosts"])
    for panel in panels:
        await panel.disconnect()


async def test_participant_host_actions_are_refused_and_change_nothing():
    app = await sync_to_async(make_app)()
    meeting = await sync_to_async(setup_meeting)(app)
    await sync_to_async(sharing_requests.do_request)(meeting, actor=Actor("ben1", "Ben"))
    before = await sync_to_async(lambda: (Meeting.objects.get(pk=meeting.pk).version, AuditEntry.objects.count()))()
    ben = await connect_panel(tokens.mint(app.client_id, meeting.uuid, "ben1"))
    await receive(ben)
    for frame in ({"action": "approve_all"}, {"action": "deny", "requests": [1]}, {"action": "disable", "share": 1},
                  {"action": "set_toggles", "share_with_apps": False}):
        await ben.send_to(text_data=json.dumps(frame))
        refused = await receive(ben, "refused")
        assert refused["code"] in ("not_host", "unknown_share"), refused
        assert refused["message"]
    after = await sync_to_async(lambda: (Meeting.objects.get(pk=meeting.pk).version, AuditEntry.objects.count()))()
    assert after == before
    await ben.disconnect()


async def test_a_frame_nested_deeper_than_the_parser_follows_is_refused_and_the_socket_stays_open():
    """Python's parser raises RecursionError on it, not ValueError: that ended the socket with an error."""
    app = await sync_to_async(make_app)()
    meeting = await sync_to_async(setup_meeting)(app)
    ben = await connect_panel(tokens.mint(app.client_id, meeting.uuid, "ben1"))
    await receive(ben)
    await ben.send_to(text_data="[" * 2000 + "]" * 2000)
    assert await receive(ben, "refused") == {"type": "refused", "code": "bad_request",
                                             "message": "Send one JSON action per frame."}
    await ben.send_to(text_data=json.dumps({"action": "resync"}))
    assert (await receive(ben))["snapshot"] is True
    await ben.disconnect()


async def test_a_token_for_meeting_a_never_sees_meeting_b():
    app = await sync_to_async(make_app)()
    meeting_a = await sync_to_async(setup_meeting)(app)
    meeting_b = await sync_to_async(setup_meeting)(app)
    watcher = await connect_panel(tokens.mint(app.client_id, meeting_a.uuid, "ben1"))
    snapshot = await receive(watcher)
    assert snapshot["state"]["meeting"]["uuid"] == meeting_a.uuid
    await sync_to_async(sharing_requests.do_request)(meeting_b, actor=Actor("ben1", "Ben"))
    assert await watcher.receive_nothing(timeout=0.5)
    # Acting on meeting B's share from meeting A's socket is refused.
    share_b = await sync_to_async(lambda: meeting_b.shares.get().pk)()
    await watcher.send_to(text_data=json.dumps({"action": "stop", "share": share_b}))
    assert (await receive(watcher, "refused"))["code"] == "unknown_share"
    await watcher.disconnect()


async def test_bad_and_expired_tokens_are_refused():
    app = await sync_to_async(make_app)()
    meeting = await sync_to_async(setup_meeting)(app)
    for token in ("", "garbage", tokens.mint(app.client_id, meeting.uuid, "ben1")[:-3] + "abc"):
        communicator = await connect_panel(token)
        refused = await receive(communicator, "refused")
        assert refused["code"] == "token"
        assert (await communicator.receive_output(timeout=10))["type"] == "websocket.close"
        await communicator.disconnect()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(st.one_of(
    st.text(min_size=1, max_size=200),
    st.dictionaries(st.sampled_from(["action", "share", "requests", "share_with_apps", "result", "token"]),
                    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                              st.lists(st.integers(), max_size=3)), max_size=4).map(json.dumps),
    st.sampled_from(["approve", "deny", "approve_all", "deny_all", "disable", "set_toggles", "stop"]).map(
        lambda a: json.dumps({"action": a, "share": 1, "requests": [1], "share_with_apps": False})),
), min_size=1, max_size=6))
def test_fuzzed_frames_from_a_participant_never_crash_or_change_state(fuzz_meeting, frames):
    import asyncio

    app, meeting = fuzz_meeting

    async def run():
        ben = await connect_panel(tokens.mint(app.client_id, meeting.uuid, "ben1"))
        await receive(ben)
        for frame in frames:
            await ben.send_to(text_data=frame)
            reply = json.loads(await ben.receive_from(timeout=3))
            assert reply["type"] in ("refused", "done", "state"), reply
        await ben.disconnect()

    before = (Meeting.objects.get(pk=meeting.pk).version, meeting.shares.filter(status="pending").count())
    asyncio.run(run())
    after = (Meeting.objects.get(pk=meeting.pk).version, meeting.shares.filter(status="pending").count())
    # A participant may only add their own request; nothing a host decides can change.
    assert after[1] >= before[1]
    assert Meeting.objects.get(pk=meeting.pk).share_with_apps


@pytest.fixture
def fuzz_meeting():
    app = make_app()
    meeting = setup_meeting(app)
    sharing_requests.do_request(meeting, actor=Actor("ben1", "Ben"))
    return app, meeting


async def test_renew_keeps_the_socket_only_for_the_same_panel():
    app = await sync_to_async(make_app)()
    meeting = await sync_to_async(setup_meeting)(app)
    other = await sync_to_async(setup_meeting)(app)
    ben = await connect_panel(tokens.mint(app.client_id, meeting.uuid, "ben1"))
    await receive(ben)
    await ben.send_to(text_data=json.dumps({"action": "renew",
                                            "token": tokens.mint(app.client_id, other.uuid, "ben1")}))
    assert (await receive(ben, "refused"))["message"] == "That token is for another panel."
    await ben.send_to(text_data=json.dumps({"action": "renew",
                                            "token": tokens.mint(app.client_id, meeting.uuid, "ben1")}))
    assert (await receive(ben, "done"))["action"] == "renew"
    await ben.send_to(text_data=json.dumps({"action": "resync"}))
    assert (await receive(ben))["snapshot"] is True
    await ben.disconnect()


async def test_a_panel_socket_of_an_app_removed_meanwhile_is_refused_and_closed():
    """Its token outlives the app: the socket says why and closes (the panel then binds again, and the app is gone:
    404), where it used to fail with an error the panel could not read."""
    app = await sync_to_async(make_app)()
    uuid = meeting_uuid()
    await sync_to_async(app.delete)()
    panel = await connect_panel(tokens.mint(app.client_id, uuid, "ben1"))
    refused = await receive(panel, "refused")
    assert refused == {"type": "refused", "code": "unknown_app",
                       "message": "No Zoom app is registered with this client id."}
    assert (await panel.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}
    assert not await sync_to_async(Meeting.objects.filter(uuid=uuid).exists)()
