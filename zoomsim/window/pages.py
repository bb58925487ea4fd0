"""HTTP pages of the simulated Zoom: the index, the meeting window per participant, the web portal."""

import json
from html import escape
from pathlib import Path
from string import Template

from aiohttp import web

from zoomsim.window import texts

TEMPLATES = Path(__file__).parent / "templates"


def page(title, body):
    return web.Response(text=Template((TEMPLATES / "portal.html").read_text()).substitute(
        title=escape(title), body=body), content_type="text/html")


def form_bool(form, name):
    return form.get(name) in ("1", "on", "true")


class Pages:
    def __init__(self, sim, hub):
        self.sim = sim
        self.hub = hub
        self.portal_chosen = {}  # (level, id) -> client ids chosen in "Choose an app to auto-start"

    def meeting_or_404(self, request):
        meeting = self.sim.find_meeting(request.match_info["meeting"])
        if meeting is None:
            raise web.HTTPNotFound(text="No such meeting")
        return meeting

    # -- index ----------------------------------------------------------------------------------------------

    async def index(self, request):
        rows = []
        for meeting in reversed(list(self.sim.meetings.values())):
            people = "".join(
                f'<li><a href="/meetings/{meeting.id}/as/{p.key}" data-key="{p.key}">{escape(p.name)}</a> '
                f'<span class="pill">{escape(p.role)}</span>{" <span class=pill>guest</span>" if p.guest else ""} '
                f'{"in meeting" if p.joined else "not joined"}</li>'
                for p in meeting.participants.values())
            add = (f'<form method="post" action="/meetings/{meeting.id}/people" class="inline">'
                   '<input name="name" placeholder="Name" required>'
                   '<select name="role"><option value="participant">participant</option>'
                   '<option value="co-host">co-host</option></select>'
                   '<label><input type="checkbox" name="guest" value="1"> guest</label>'
                   '<label><input type="checkbox" name="join" value="1" checked> join now</label>'
                   '<button class="secondary">Add person</button></form>') if meeting.status != "ended" else ""
            rows.append(f'<tr data-meeting-id="{meeting.id}"><td><strong>{escape(meeting.topic)}</strong><br>'
                        f'<span class="muted">{meeting.id}</span></td><td>{escape(meeting.status)}</td>'
                        f'<td><ul>{people}</ul>{add}</td></tr>')
        apps = "".join(f"<tr><td>{escape(a.name)}</td><td><code>{escape(a.client_id)}</code></td>"
                       f"<td>{escape(a.home_url)}</td></tr>" for a in self.sim.apps.values())
        body = f"""
<h1>Meetings</h1>
<div class="card"><form method="post" action="/meetings" class="inline">
  <input name="topic" placeholder="Topic" required> <input name="host" placeholder="Host name" required>
  <label><input type="checkbox" name="require_host_approval" value="1" checked> {texts.TOGGLE_REQUIRE_APPROVAL}</label>
  <label><input type="checkbox" name="start" value="1" checked> start now</label>
  <button class="primary">New meeting</button></form></div>
<div class="card"><table><tr><th>Meeting</th><th>Status</th><th>People (open their window)</th></tr>
{"".join(rows) or '<tr><td colspan="3" class="muted">No meetings yet.</td></tr>'}</table></div>
<h2>Registered apps</h2>
<div class="card"><table><tr><th>Name</th><th>Client ID</th><th>Home URL</th></tr>
{apps or '<tr><td colspan="3" class="muted">None (POST /_sim/apps).</td></tr>'}</table></div>"""
        return page("Zoom (simulated)", body)

    async def create_meeting(self, request):
        form = await request.post()
        meeting = self.sim.create_meeting({
            "topic": form.get("topic", ""), "host": {"name": form.get("host") or "Host"},
            "settings": {"require_host_approval": form_bool(form, "require_host_approval")},
            "start": form_bool(form, "start")})
        raise web.HTTPSeeOther(f"/#meeting-{meeting.id}")

    async def add_person(self, request):
        meeting = self.meeting_or_404(request)
        form = await request.post()
        fields = {"name": form.get("name") or "Guest", "guest": form_bool(form, "guest")}
        participant = self.sim._add_participant(meeting, fields, role=form.get("role") or "participant")
        if form_bool(form, "join"):
            self.sim.join(meeting, participant)
        else:
            self.sim.notify("participant_added", meeting)
        raise web.HTTPSeeOther("/")

    # -- the meeting window ---------------------------------------------------------------------------------

    async def meeting_window(self, request):
        meeting = self.meeting_or_404(request)
        participant = meeting.participant(request.match_info["key"])
        if participant is None:
            raise web.HTTPNotFound(text="No such participant in this meeting")
        boot = {"meeting_id": meeting.id, "key": participant.key,
                "ws_url": f"/meetings/{meeting.id}/as/{participant.key}/ws"}
        html = Template((TEMPLATES / "meeting.html").read_text()).substitute(
            boot=json.dumps(boot).replace("</", "<\\/"))
        response = web.Response(text=html, content_type="text/html")
        if participant.user_id:
            # The simulated OAuth server signs in whoever last acted in a window (zoomsim/README.md).
            response.set_cookie("zoomsim_user", participant.user_id, path="/", httponly=True, samesite="Lax")
        return response

    async def meeting_socket(self, request):
        meeting = self.meeting_or_404(request)
        participant = meeting.participant(request.match_info["key"])
        if participant is None:
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        await self.hub.serve(ws, meeting, participant)
        return ws

    # -- web portal: Account / Group / User settings → Zoom Apps -----------------------------------------------

    async def portal_index(self, request):
        accounts, groups = {}, {}
        for user in self.sim.users.values():
            accounts.setdefault(user.account_id, []).append(user)
            if user.group_id:
                groups.setdefault(user.group_id, []).append(user)

        def names(users):
            return ", ".join(escape(u.name) for u in users)

        account_rows = "".join(f'<tr><td><a href="/portal/account/{escape(a)}">{escape(a)}</a></td>'
                               f'<td>{names(u)}</td></tr>' for a, u in accounts.items())
        group_rows = "".join(f'<tr><td><a href="/portal/group/{escape(g)}">{escape(g)}</a></td><td>{names(u)}</td></tr>'
                             for g, u in groups.items())
        user_rows = "".join(f'<tr><td><a href="/portal/user/{escape(u.user_id)}">{escape(u.name)}</a></td>'
                            f'<td>{escape(u.role)}</td><td>{escape(u.account_id)}</td></tr>'
                            for u in self.sim.users.values())
        body = f"""
<h1>Admin: Zoom Apps settings</h1>
<h2>Account settings</h2><div class="card"><table><tr><th>Account</th><th>Users</th></tr>{account_rows}</table></div>
<h2>Group settings</h2><div class="card"><table><tr><th>Group</th><th>Members</th></tr>
{group_rows or '<tr><td colspan="2" class="muted">No groups.</td></tr>'}</table></div>
<h2>User settings</h2><div class="card"><table><tr><th>User</th><th>Role</th><th>Account</th></tr>
{user_rows}</table></div>"""
        return page("Zoom web portal (simulated)", body)

    def _level(self, request):
        level, ident = request.match_info["level"], request.match_info["ident"]
        if level not in ("account", "group", "user"):
            raise web.HTTPNotFound()
        return level, ident

    async def portal_settings(self, request):
        level, ident = self._level(request)
        row = self.sim.policies.get((level, ident), {})
        share = row.get("share_with_apps")
        on_apps = list(row.get("auto_start_apps") or [])
        chosen = list(dict.fromkeys(on_apps + sorted(self.portal_chosen.get((level, ident), set()))))
        base = f"/portal/{level}/{escape(ident)}"
        inherit = "" if level == "account" else (
            f'<button name="value" value="inherit" class="secondary"{" disabled" if share is None else ""}>'
            f'Use {"account" if level == "group" else "group/account"} setting</button>')
        share_state = "Not set (inherited)" if share is None else ("On" if share else "Off")
        app_rows = "".join(
            f'<tr data-client-id="{escape(cid)}"><td>{escape(self._app_name(cid))}</td>'
            f'<td><form method="post" action="{base}/auto-start" class="inline">'
            f'<input type="hidden" name="client_id" value="{escape(cid)}">'
            f'<input type="hidden" name="on" value="{"0" if cid in on_apps else "1"}">'
            f'<span class="auto-start-state">Auto-start {"On" if cid in on_apps else "Off"}</span>'
            f'<button class="toggle" role="switch" aria-checked="{"true" if cid in on_apps else "false"}" '
            f'aria-label="Auto-start {escape(self._app_name(cid))}"></button></form></td></tr>' for cid in chosen)
        options = "".join(f'<option value="{escape(a.client_id)}">{escape(a.name)}</option>'
                          for a in self.sim.apps.values() if a.client_id not in chosen)
        effective, title = "", ident
        if level == "user" and ident in self.sim.users:
            user = self.sim.users[ident]
            title = f"{user.name} ({ident})"
            policy = self.sim.effective_policy(user)
            auto = ", ".join(self._app_name(cid) for cid in policy["auto_start_apps"] or []) or "none"
            sharing = "On" if policy["share_with_apps"] else "Off"
            effective = (f'<p class="muted">Effective for this user: sharing {sharing};'
                         f' auto-start: {escape(auto)}</p>')
        body = f"""
<p><a href="/portal">Admin</a> › {level.title()} settings › <strong>{escape(title)}</strong></p>
<h1>{level.title()} settings — Zoom Apps</h1>{effective}
<div class="card">
 <div class="setting" id="share-setting"><div><div class="setting-title">{texts.PORTAL_SHARE_SETTING}</div>
   <div class="setting-help">Allow apps to access real-time meeting content (audio, video, transcript, chat) in
   meetings hosted by these users.</div></div>
   <form method="post" action="{base}/share" class="inline"><span class="share-state">{share_state}</span>
   <button name="value" value="on" class="secondary"{" disabled" if share is True else ""}>On</button>
   <button name="value" value="off" class="secondary"{" disabled" if share is False else ""}>Off</button>{inherit}
   </form></div>
 <div class="setting" id="auto-start-setting"><div style="flex:1">
   <div class="setting-title">{texts.PORTAL_AUTO_START}</div>
   <div class="setting-help">Chosen apps start by themselves when these users host or join a meeting.</div>
   <form method="post" action="{base}/auto-start" class="inline" style="margin-top:10px">
   <label for="choose-app">{texts.PORTAL_CHOOSE_APP}</label>
   <select id="choose-app" name="client_id"><option value="">Select an app…</option>{options}</select>
   <input type="hidden" name="on" value="1"><button class="primary">Save</button></form>
   <table style="margin-top:10px">{app_rows or '<tr><td class="muted">No app chosen.</td></tr>'}</table></div></div>
</div>"""
        return page(f"{level.title()} settings", body)

    def _app_name(self, client_id):
        app = self.sim.apps.get(client_id)
        return app.name if app else client_id

    async def portal_share(self, request):
        level, ident = self._level(request)
        value = (await request.post()).get("value")
        self.sim.set_policy(level, ident, {"share_with_apps": {"on": True, "off": False}.get(value)})
        raise web.HTTPSeeOther(f"/portal/{level}/{ident}")

    async def portal_auto_start(self, request):
        level, ident = self._level(request)
        form = await request.post()
        client_id = form.get("client_id") or ""
        if client_id not in self.sim.apps:
            raise web.HTTPSeeOther(f"/portal/{level}/{ident}")
        self.portal_chosen.setdefault((level, ident), set()).add(client_id)
        on_apps = [cid for cid in self.sim.policies.get((level, ident), {}).get("auto_start_apps") or []
                   if cid != client_id]
        if form_bool(form, "on"):
            on_apps.append(client_id)
        self.sim.set_policy(level, ident, {"auto_start_apps": on_apps})
        raise web.HTTPSeeOther(f"/portal/{level}/{ident}")
