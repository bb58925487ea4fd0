"""The meeting window's WebSocket refuses bad input and wrong roles clearly, and keeps serving the window."""

import json

import aiohttp


async def receive(ws, kind):
    async for frame in ws:
        message = json.loads(frame.data)
        if message["type"] == kind:
            return message
    raise AssertionError(f"socket closed before a {kind!r} message")


async def test_bad_input_and_host_actions_from_a_participant_change_nothing(zoomsim):
    meeting = zoomsim.post("/_sim/meetings", json={
        "topic": "Socket", "host": {"name": "Ada"}, "participants": [{"name": "Bo"}], "start": True}).json()
    url = f"{zoomsim.http_url}/meetings/{meeting['id']}/as/p2/ws".replace("http", "ws", 1)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        first = await receive(ws, "state")
        assert first["state"]["me"] == {"key": "p2", "name": "Bo", "role": "participant", "joined": True,
                                        "is_host": False, "guest": False}
        assert first["state"]["requests"] == []

        await ws.send_str("not json")
        await ws.send_str("[1, 2, 3]")
        await ws.send_json({"type": "sdk_call", "client_id": "nobody", "jsCallId": "id1", "apiName": "config"})
        reply = await receive(ws, "sdk_response")
        assert reply["data"]["jsCallId"] == "id1" and reply["data"]["errorCode"] == "10001"

        for action in ({"action": "end"}, {"action": "settings", "share_with_apps": False},
                       {"action": "approve_all"}, {"action": "disable_app", "client_id": "x"}):
            await ws.send_json({"type": "action", **action})
            toast = await receive(ws, "toast")
            assert toast["text"] == "Only the host can do this." and toast["kind"] == "error"
        await ws.send_json({"type": "action", "action": "fly"})
        assert (await receive(ws, "toast"))["text"] == "unknown action 'fly'"

    after = zoomsim.get(f"/_sim/meetings/{meeting['id']}").json()
    assert after["status"] == "started" and after["settings"]["share_with_apps"] is True


async def test_an_invitation_that_is_not_there_is_refused_and_nothing_opens(zoomsim):
    meeting = zoomsim.post("/_sim/meetings", json={
        "topic": "Invitations", "host": {"name": "Ada"}, "participants": [{"name": "Bo"}], "start": True}).json()
    url = f"{zoomsim.http_url}/meetings/{meeting['id']}/as/p1/ws".replace("http", "ws", 1)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        assert (await receive(ws, "state"))["state"]["invitations"] == []
        for action in ("open_invitation", "ignore_invitation"):
            for invitation_id in ("no-such-invitation", None, ["x"]):
                await ws.send_json({"type": "action", "action": action, "invitation_id": invitation_id})
                toast = await receive(ws, "toast")
                assert toast == {"type": "toast", "text": "This invitation is no longer there.", "kind": "error"}
        await ws.send_json({"type": "action", "action": "ack_disclosure"})  # a window change: a state is pushed
        state = (await receive(ws, "state"))["state"]
        assert state["invitations"] == [] and state["panel"] is None
