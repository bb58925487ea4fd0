"""Scripted meetings (README "Scripts") and the --apps-file loader."""

import asyncio
import json
import logging

from zoomsim.errors import StreamRefused

log = logging.getLogger("zoomsim.scripts")

ACTIONS = {"start", "speak", "chat", "video", "share", "join", "leave", "role", "end", "settings"}


def load_apps_file(sim, path):
    with open(path) as handle:
        entries = json.load(handle)
    for fields in entries:
        app = sim.register_app(fields)
        sim.spawn(_validate_until_ok(sim, app))


async def _validate_until_ok(sim, app):
    """Apps from a file are validated in the background: the app may start after the simulator."""
    delay = 0.5
    while True:
        problem = await sim.webhooks.validate_url(app)
        if problem is None:
            app.validated_at = sim.clock.now_ms()
            log.info("event=app_validated client_id=%s", app.client_id)
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10)


def run_script_file(sim, path):
    with open(path) as handle:
        return run_script(sim, json.load(handle))


def run_script(sim, script):
    events = script.get("events") or []
    for event in events:
        if event.get("do") not in ACTIONS:
            raise ValueError(f"unknown script action {event.get('do')!r}; one of {sorted(ACTIONS)}")
    meeting = sim.create_meeting(dict(script["meeting"], start=False))
    sim.spawn(_play(sim, meeting, sorted(events, key=lambda e: e.get("at", 0)), bool(script.get("loop"))))
    return meeting


async def _play(sim, meeting, events, loop):
    while True:
        began = asyncio.get_running_loop().time()
        for event in events:
            wait = began + sim.clock.real_seconds(event.get("at", 0)) - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
            if meeting.status == "ended" and event["do"] != "end":
                return
            try:
                await _do(sim, meeting, event)
            except (StreamRefused, ValueError, KeyError) as exc:
                log.warning("event=script_step_failed meeting_uuid=%s step=%s error=%s", meeting.uuid, event["do"],
                            exc)
        if not loop or meeting.status == "ended":
            return


async def _do(sim, meeting, event):
    action = event["do"]
    who = event.get("who")
    if action == "start":
        sim.start_meeting(meeting)
    elif action == "end":
        sim.end_meeting(meeting)
    elif action == "settings":
        sim.update_settings(meeting, event.get("settings") or {})
    elif action == "join":
        target = meeting.participant(who) if isinstance(who, str) else None
        sim.join(meeting, target or (who if isinstance(who, dict) else {"name": who}))
    else:
        participant = meeting.participant(who)
        if participant is None:
            raise KeyError(f"no participant {who!r}")
        if action == "speak":
            sim.speak(meeting, participant, event["text"], event.get("language", 9))
        elif action == "chat":
            sim.chat(meeting, participant, event["text"])
        elif action == "video":
            sim.set_video(meeting, participant, event.get("on", True))
        elif action == "share":
            sim.set_sharing(meeting, participant, event.get("on", True))
        elif action == "leave":
            sim.leave(meeting, participant, ejected=bool(event.get("ejected")))
        elif action == "role":
            sim.set_role(meeting, participant, event["role"])
