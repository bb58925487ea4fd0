"""The simulated Zoom: Marketplace apps, users, admin policy, meetings, participants and RTMS streams.

Everything that changes goes through a `Simulator` method, which then tells the subscribers
(`sim.subscribe(callback)`, called as `callback(kind, meeting)`), sends the webhooks and drives the
RTMS sockets of the affected streams.
"""

import asyncio
import base64
import logging
import secrets
import time
from dataclasses import dataclass, field

from zoomsim import scripts
from zoomsim.errors import StreamRefused
from zoomsim.faults import Faults
from zoomsim.media import MediaTicker, MeetingMedia, Voices
from zoomsim.oauth import TokenStore
from zoomsim.protocol import Event, Msg, SessionState, StopReason, StreamState
from zoomsim.rtms_server import RtmsServer
from zoomsim.webhooks import Webhooks

log = logging.getLogger("zoomsim.state")

ROLES_IN_MEETING = ("host", "co-host", "participant")
ACCOUNT_ROLES = ("owner", "admin", "member")
DEFAULT_CONCURRENCY_LIMIT = 2000
SIGNALING_RECONNECT_WINDOW_S = 60
MEDIA_RECONNECT_WINDOW_S = 65
# Meeting events' `object.type` and `object.duration` (minutes): every simulated meeting is a scheduled one.
MEETING_TYPE_SCHEDULED = 2
SCHEDULED_DURATION_MIN = 60
# What Zoom calls the roles in `meeting.participant_role_changed` (old_role / new_role).
ZOOM_ROLE_NAMES = {"host": "host", "co-host": "co-host", "participant": "attendee"}


def zoom_id():
    """A Zoom-style 22-character user/account id."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()[:22]


def iso_time(ms):
    """Zoom's webhook timestamps inside payloads: ISO 8601 in UTC, whole seconds ("2019-07-16T17:13:13Z")."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def meeting_uuid():
    """A 24-character base64 meeting UUID; never with '/' so it fits in a URL path segment."""
    while True:
        value = base64.b64encode(secrets.token_bytes(16)).decode()
        if "/" not in value:
            return value


class SimClock:
    """Simulated time: wall-clock at start, then running `scale` times faster."""

    def __init__(self, scale):
        self.scale = scale
        self.wall_start = time.time()
        self.mono_start = time.monotonic()

    def now_ms(self):
        return int((self.wall_start + (time.monotonic() - self.mono_start) * self.scale) * 1000)

    def real_seconds(self, sim_seconds):
        return sim_seconds / self.scale


@dataclass
class App:
    name: str
    client_id: str
    client_secret: str
    webhook_secret_token: str
    event_url: str
    home_url: str = ""
    redirect_url: str = ""
    account_id: str = ""
    events: list | None = None
    media_types: list = field(default_factory=lambda: ["audio", "video", "deskshare", "transcript", "chat"])
    validated_at: int | None = None

    def public(self):
        data = {k: v for k, v in self.__dict__.items() if k not in ("client_secret", "webhook_secret_token")}
        data["has_client_secret"] = bool(self.client_secret)
        return data

    def wants(self, event):
        return self.events is None or event in self.events


@dataclass
class User:
    user_id: str
    account_id: str
    name: str
    email: str
    role: str = "member"
    group_id: str | None = None

    def public(self):
        return dict(self.__dict__)


@dataclass
class Participant:
    key: str
    name: str
    role: str
    rtms_user_id: int
    user: User | None = None
    guest: bool = False
    joined: bool = False
    video: bool = False
    sharing: bool = False
    joined_at: int | None = None
    left_at: int | None = None

    @property
    def user_id(self):
        return self.user.user_id if self.user else ""

    @property
    def account_id(self):
        return self.user.account_id if self.user else ""

    @property
    def email(self):
        return self.user.email if self.user else ""

    def public(self):
        return {
            "key": self.key, "user_id": self.user_id, "account_id": self.account_id, "name": self.name,
            "email": self.email, "role": self.role, "rtms_user_id": self.rtms_user_id, "joined": self.joined,
            "guest": self.guest, "video": self.video, "sharing": self.sharing, "joined_at": self.joined_at,
            "left_at": self.left_at,
        }


@dataclass
class Meeting:
    id: int
    uuid: str
    topic: str
    host: User
    settings: dict
    status: str = "waiting"
    participants: dict = field(default_factory=dict)  # key -> Participant, in join order
    stream_ids: list = field(default_factory=list)
    pending_requests: list = field(default_factory=list)
    active_speaker: str | None = None
    created_at: int = 0
    started_at: int | None = None
    ended_at: int | None = None
    media: object = None  # zoomsim.media.MeetingMedia

    @property
    def live(self):
        return self.status == "started"

    def participant(self, ref):
        """By key, user id or (case-insensitive) name."""
        if ref in self.participants:
            return self.participants[ref]
        for participant in self.participants.values():
            if ref and (participant.user_id == ref or participant.name.lower() == str(ref).lower()):
                return participant
        return None

    def present(self):
        return [p for p in self.participants.values() if p.joined]

    def host_participant(self):
        for participant in self.participants.values():
            if participant.role == "host":
                return participant
        return None

    def public(self, sim=None):
        return {
            "id": self.id, "uuid": self.uuid, "topic": self.topic, "status": self.status,
            "host_user_id": self.host.user_id, "account_id": self.host.account_id, "settings": dict(self.settings),
            "participants": [p.public() for p in self.participants.values()],
            "streams": list(self.stream_ids), "pending_requests": list(self.pending_requests),
            "active_speaker": self.active_speaker, "created_at": self.created_at, "started_at": self.started_at,
            "ended_at": self.ended_at,
        }


class Stream:
    """One RTMS stream: its lifecycle state plus the live sockets the RTMS server attached to it."""

    def __init__(self, sim, meeting, app, operator, operator_id, started_by):
        self.sim = sim
        self.id = secrets.token_hex(16)
        self.meeting = meeting
        self.app = app
        self.operator = operator
        self.operator_id = operator_id
        self.started_by = started_by
        self.state = "starting"  # starting | active | interrupted | paused | stopped
        self.stream_state = StreamState.INACTIVE
        self.session_id = None
        self.session_state = SessionState.INACTIVE
        self.stop_reason = None
        self.created_at = sim.clock.now_ms()
        self.stopped_at = None
        self.paused = False
        self.ready = False
        self.ever_ready = False
        self.signaling = None  # live signaling connection
        self.media = {}  # media type -> live media connection (the same object under several keys for "all")
        self.media_params = {}
        self.subscribed_events = set()
        self.video_subscription = None
        self.connections = []  # history records (dicts), never pruned
        self.errors = []
        self.frames_sent = {}
        self.reconnect_timer = None
        self.media_timers = {}
        self.rtms_url = sim.rtms_url  # the RTMS server it lives on (zoomsim/chaos.py fails it over to another)
        # Audio is produced from the meeting timeline, so "buffering" is only a cursor: the next tick to send.
        self.audio_next_tick = sim.ticker.tick_index()
        self.picture_next_tick = {}  # video / deskshare: the tick the next picture is due
        self.text_backlog = []  # transcript/chat messages waiting for their socket (bytes, media type)

    @property
    def live(self):
        return self.state != "stopped"

    def record_error(self, status_code, reason):
        self.errors.append({"status_code": int(status_code), "reason": reason, "at": self.sim.clock.now_ms()})

    def public(self):
        media = {}
        for kind, conn in self.media.items():
            media[kind] = dict(conn.params.get(kind) or {}) if conn else None
        return {
            "id": self.id, "meeting_uuid": self.meeting.uuid, "meeting_id": self.meeting.id,
            "client_id": self.app.client_id, "operator_id": self.operator_id,
            "operator_key": self.operator.key if self.operator else None, "started_by": self.started_by,
            "state": self.state, "stream_state": int(self.stream_state), "session_id": self.session_id,
            "session_state": int(self.session_state),
            "stop_reason": int(self.stop_reason) if self.stop_reason is not None else None,
            "created_at": self.created_at, "stopped_at": self.stopped_at, "ready": self.ready,
            "signaling_connected": self.signaling is not None, "media": media,
            "subscribed_events": sorted(self.subscribed_events), "frames_sent": dict(self.frames_sent),
            "buffered_audio_frames": max(0, self.sim.ticker.tick_index() - self.audio_next_tick)
            if self.live and not self.paused else 0,
            "connections": list(self.connections), "errors": list(self.errors),
        }

    # -- messages on the signaling socket -------------------------------------------------------------------

    def send_signaling(self, message):
        if self.signaling is not None:
            self.signaling.send_json(message)

    def send_event(self, event_type, **fields):
        if self.signaling is None:
            return
        if event_type not in (Event.FIRST_PACKET_TIMESTAMP, Event.MEDIA_CONNECTION_INTERRUPTED) and (
            int(event_type) not in self.subscribed_events
        ):
            return
        event = {"event_type": int(event_type), "timestamp": self.sim.clock.now_ms(), **fields}
        self.signaling.send_json({"msg_type": Msg.EVENT_UPDATE, "event": event})

    def send_stream_state(self, reason=None):
        message = {"msg_type": Msg.STREAM_STATE_UPDATE, "rtms_stream_id": self.id, "state": int(self.stream_state),
                   "timestamp": self.sim.clock.now_ms()}
        if reason is not None:
            message["reason"] = int(reason)
        self.send_signaling(message)

    def send_session_state(self, stop_reason=None):
        if self.session_id is None:
            return
        message = {"msg_type": Msg.SESSION_STATE_UPDATE, "rtms_session_id": self.session_id,
                   "state": int(self.session_state), "timestamp": self.sim.clock.now_ms()}
        if stop_reason is not None:
            message["stop_reason"] = int(stop_reason)
        self.send_signaling(message)

    def connections_live(self):
        live = set(self.media.values())
        if self.signaling is not None:
            live.add(self.signaling)
        return live

    def close_media(self, code=1000, abort=False):
        for conn in set(self.media.values()):
            conn.close(code, abort=abort)
        self.media.clear()

    def cancel_timers(self):
        if self.reconnect_timer:
            self.reconnect_timer.cancel()
            self.reconnect_timer = None
        for timer in self.media_timers.values():
            timer.cancel()
        self.media_timers.clear()


class Simulator:
    def __init__(self, config):
        self.config = config
        self.clock = SimClock(config.clock_scale)
        self.apps = {}  # client_id -> App
        self.users = {}  # user_id -> User
        self.meetings = {}  # uuid -> Meeting
        self.streams = {}  # stream id -> Stream
        self.policies = {}  # (level, id) -> dict
        self.http_url = ""
        self.rtms_url = ""
        self._listeners = []
        self._meeting_numbers = set()
        self.faults = Faults(self)
        self.webhooks = Webhooks(self)
        self.tokens = TokenStore(self)
        self.ticker = MediaTicker(self)
        self.voices = Voices(config.voice)
        self.loop = None
        self.rtms = RtmsServer(self)
        self._tasks = set()

    # -- process lifecycle ------------------------------------------------------------------------------------

    async def start(self):
        await self.webhooks.start()
        self.ticker.start()

    def set_urls(self, http_url, rtms_url):
        self.http_url, self.rtms_url = http_url, rtms_url

    async def after_listening(self):
        if self.config.apps_file:
            scripts.load_apps_file(self, self.config.apps_file)
        if self.config.script:
            scripts.run_script_file(self, self.config.script)

    async def shutdown(self):
        for stream in list(self.streams.values()):
            if stream.live:
                self._terminate(stream, StopReason.EXIT_SIGNAL, send_webhook=False)
        self.ticker.stop()
        self.rtms.stop()
        for task in list(self._tasks):
            task.cancel()
        await self.webhooks.stop()

    def spawn(self, coro):
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- listeners ----------------------------------------------------------------------------------------------

    def subscribe(self, callback):
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def notify(self, kind, meeting):
        for callback in list(self._listeners):
            try:
                callback(kind, meeting)
            except Exception:  # a broken listener must not break the simulation
                log.exception("event=listener_failed kind=%s", kind)

    # -- apps and users -----------------------------------------------------------------------------------------

    def register_app(self, fields):
        app = App(
            name=fields.get("name") or fields["client_id"], client_id=fields["client_id"],
            client_secret=fields["client_secret"], webhook_secret_token=fields.get("webhook_secret_token", ""),
            event_url=fields.get("event_url", ""), home_url=fields.get("home_url", ""),
            redirect_url=fields.get("redirect_url", ""), account_id=fields.get("account_id") or zoom_id(),
            events=fields.get("events"),
        )
        if fields.get("media_types"):
            app.media_types = list(fields["media_types"])
        self.apps[app.client_id] = app
        log.info("event=app_registered client_id=%s name=%s", app.client_id, app.name)
        self.notify("apps", None)
        return app

    def delete_app(self, app):
        """Its developer deletes the app from the Marketplace: its streams end, its tokens stop working and Zoom
        sends it nothing more, retries of earlier events included."""
        for stream in list(self.streams.values()):
            if stream.live and stream.app is app:
                self._terminate(stream, StopReason.STREAM_REVOKED, send_webhook=False)
        self.tokens.revoke(app.client_id)
        del self.apps[app.client_id]
        log.info("event=app_deleted client_id=%s", app.client_id)
        self.notify("apps", None)

    def add_user(self, fields):
        user_id = fields.get("user_id") or zoom_id()
        if user_id in self.users:
            user = self.users[user_id]
            for name in ("name", "email", "role", "group_id", "account_id"):
                if fields.get(name):
                    setattr(user, name, fields[name])
            return user
        role = fields.get("role") or "member"
        if role not in ACCOUNT_ROLES:
            raise ValueError(f"role must be one of {ACCOUNT_ROLES}")
        name = fields.get("name") or "User " + user_id[:4]
        user = User(
            user_id=user_id, account_id=fields.get("account_id") or zoom_id(), name=name,
            email=fields.get("email") or f"{name.lower().replace(' ', '.')}@example.test", role=role,
            group_id=fields.get("group_id"),
        )
        self.users[user_id] = user
        return user

    # -- admin policy (user > group > account) -------------------------------------------------------------------

    def set_policy(self, level, ident, fields):
        if level not in ("account", "group", "user"):
            raise ValueError("level must be account, group or user")
        row = self.policies.setdefault((level, ident), {})
        for name in ("share_with_apps", "auto_start_apps", "rtms_eligible", "concurrency_limit"):
            if name in fields:
                row[name] = fields[name]
        log.info("event=policy_set level=%s id=%s fields=%s", level, ident, sorted(fields))
        # A policy that now forbids sharing stops the streams of the meetings it governs.
        for meeting in list(self.meetings.values()):
            if meeting.live and not self.effective_policy(meeting.host)["share_with_apps"]:
                for stream in self.streams_for(meeting):
                    self.stop_stream(stream, StopReason.ALL_APPS_DISABLED)
        self.notify("policy", None)
        return row

    def _policy_rows(self, user):
        rows = []
        if user is not None:
            rows.append(self.policies.get(("user", user.user_id), {}))
            if user.group_id:
                rows.append(self.policies.get(("group", user.group_id), {}))
            rows.append(self.policies.get(("account", user.account_id), {}))
        return rows

    def effective_policy(self, user):
        """The admin policy for `user`, most specific level first."""
        result = {"share_with_apps": True, "auto_start_apps": []}
        for name in result:
            for row in self._policy_rows(user):
                if row.get(name) is not None:
                    result[name] = row[name]
                    break
        account = self.policies.get(("account", user.account_id), {}) if user else {}
        result["rtms_eligible"] = account.get("rtms_eligible", True)
        result["concurrency_limit"] = account.get("concurrency_limit") or DEFAULT_CONCURRENCY_LIMIT
        return result

    # -- meetings -------------------------------------------------------------------------------------------------

    def find_meeting(self, ref):
        ref = str(ref)
        if ref in self.meetings:
            return self.meetings[ref]
        for meeting in self.meetings.values():
            if str(meeting.id) == ref or meeting.uuid == ref.replace(" ", "+"):
                return meeting
        return None

    def _meeting_number(self):
        while True:
            number = secrets.randbelow(89_999_999_999) + 10_000_000_000
            if number not in self._meeting_numbers:
                self._meeting_numbers.add(number)
                return number

    def create_meeting(self, fields):
        host_fields = dict(fields.get("host") or {})
        host_fields.setdefault("role", "owner")
        host = self.add_user(host_fields)
        settings = {"share_with_apps": True, "require_host_approval": True, "continuous_sharing": True}
        settings.update({k: v for k, v in (fields.get("settings") or {}).items() if v is not None})
        meeting = Meeting(
            id=self._meeting_number(), uuid=meeting_uuid(), topic=fields.get("topic") or f"{host.name}'s meeting",
            host=host, settings=settings, created_at=self.clock.now_ms(),
        )
        meeting.media = MeetingMedia(self, meeting)
        self.meetings[meeting.uuid] = meeting
        self._add_participant(meeting, {"user_id": host.user_id}, role="host")
        invited = [(person, self._add_participant(meeting, person, role=person.get("role") or "participant"))
                   for person in fields.get("participants") or []]
        log.info("event=meeting_created meeting_uuid=%s meeting_id=%s", meeting.uuid, meeting.id)
        if fields.get("start"):
            self.start_meeting(meeting)
            for person, participant in invited:
                if person.get("join", True):
                    self.join(meeting, participant)
        self.notify("meeting_created", meeting)
        return meeting

    def _add_participant(self, meeting, fields, role="participant"):
        if role not in ROLES_IN_MEETING:
            raise ValueError(f"role must be one of {ROLES_IN_MEETING}")
        guest = bool(fields.get("guest"))
        user = None if guest else self.add_user({k: v for k, v in fields.items() if k not in ("role", "join")})
        index = len(meeting.participants) + 1
        participant = Participant(
            key=f"p{index}", name=fields.get("name") or (user.name if user else f"Guest {index}"), role=role,
            rtms_user_id=16778240 + 1024 * (index - 1), user=user, guest=guest,
        )
        meeting.participants[participant.key] = participant
        return participant

    def start_meeting(self, meeting):
        if meeting.status == "started":
            return
        if meeting.status == "ended":
            raise StreamRefused(3001, "Meeting has ended.", "meeting_ended", 400)
        meeting.status = "started"
        meeting.started_at = self.clock.now_ms()
        log.info("event=meeting_started meeting_uuid=%s", meeting.uuid)
        self._meeting_webhook(meeting, "meeting.started", {})
        self.notify("meeting_started", meeting)
        host = meeting.host_participant()
        if host is not None:
            self.join(meeting, host)

    def join(self, meeting, participant_or_fields):
        if not meeting.live:
            if meeting.status == "ended":
                raise StreamRefused(3001, "Meeting has ended.", "meeting_ended", 400)
            self.start_meeting(meeting)
        participant = participant_or_fields
        if isinstance(participant_or_fields, dict):
            participant = meeting.participant(participant_or_fields.get("key") or "") or self._add_participant(
                meeting, participant_or_fields, role=participant_or_fields.get("role") or "participant")
        if participant.joined:
            return participant
        participant.joined = True
        participant.joined_at = self.clock.now_ms()
        participant.left_at = None
        log.info("event=participant_joined meeting_uuid=%s key=%s", meeting.uuid, participant.key)
        joined = self._participant_payload(participant, join_time=iso_time(participant.joined_at))
        self._meeting_webhook(meeting, "meeting.participant_joined", {"participant": joined})
        for stream in self.streams_for(meeting):
            stream.send_event(Event.PARTICIPANT_JOIN, participants=[
                {"user_id": participant.rtms_user_id, "user_name": participant.name}])
            if participant.video:
                stream.send_event(Event.PARTICIPANT_VIDEO_ON, participants=[{"user_id": participant.rtms_user_id}])
        self.notify("participant_joined", meeting)
        self._auto_start(meeting, participant)
        return participant

    def leave(self, meeting, participant, ejected=False):
        if not participant.joined:
            return
        participant.joined = False
        participant.left_at = self.clock.now_ms()
        was_sharing = participant.sharing
        participant.sharing = participant.video = False
        if meeting.active_speaker == participant.key:
            meeting.active_speaker = None
        log.info("event=participant_left meeting_uuid=%s key=%s ejected=%s", meeting.uuid, participant.key, ejected)
        left = self._participant_payload(participant, leave_time=iso_time(participant.left_at))
        self._meeting_webhook(meeting, "meeting.participant_left", {"participant": left})
        for stream in self.streams_for(meeting):
            if was_sharing:
                stream.send_event(Event.SHARING_STOP)
            stream.send_event(Event.PARTICIPANT_LEAVE, participants=[{"user_id": participant.rtms_user_id}])
        for stream in self.streams_for(meeting):
            if stream.operator is participant:
                if ejected:
                    self.stop_stream(stream, StopReason.USER_EJECTED)
                elif not meeting.settings.get("continuous_sharing", True):
                    self.stop_stream(stream, StopReason.USER_LEFT)
        self.notify("participant_left", meeting)

    def set_role(self, meeting, participant, role):
        if role not in ROLES_IN_MEETING:
            raise ValueError(f"role must be one of {ROLES_IN_MEETING}")
        changed = [(participant, participant.role, role)]
        if role == "host":
            for other in meeting.participants.values():
                if other.role == "host" and other is not participant:
                    changed.append((other, "host", "co-host"))
                    other.role = "co-host"
            if participant.user is not None:
                meeting.host = participant.user
        participant.role = role
        log.info("event=role_changed meeting_uuid=%s key=%s role=%s", meeting.uuid, participant.key, role)
        for person, old, new in changed:
            if meeting.live and person.joined and old != new:
                self._role_changed_webhook(meeting, person, old, new)
        self.notify("role_changed", meeting)

    def update_settings(self, meeting, fields):
        for name in ("share_with_apps", "require_host_approval", "continuous_sharing"):
            if fields.get(name) is not None:
                meeting.settings[name] = bool(fields[name])
        if not meeting.settings["share_with_apps"]:
            for stream in self.streams_for(meeting):
                self.stop_stream(stream, StopReason.ALL_APPS_DISABLED)
            meeting.pending_requests.clear()
        self.notify("settings", meeting)

    def end_meeting(self, meeting):
        if meeting.status == "ended":
            return
        for stream in self.streams_for(meeting):
            self.stop_stream(stream, StopReason.MEETING_ENDED)
        for participant in meeting.participants.values():
            participant.video = participant.sharing = False
            if participant.joined:
                participant.joined = False
                participant.left_at = self.clock.now_ms()
        meeting.active_speaker = None
        meeting.status = "ended"
        meeting.ended_at = self.clock.now_ms()
        meeting.pending_requests.clear()
        log.info("event=meeting_ended meeting_uuid=%s", meeting.uuid)
        self._meeting_webhook(meeting, "meeting.ended", {"end_time": iso_time(meeting.ended_at)})
        self.notify("meeting_ended", meeting)

    def speak(self, meeting, participant, text, language=9):
        """Render the line and play it from the next free tick. Returns a task (await it for the line's
        `{start_time, end_time}` in ms); callers that do not need the times can ignore it."""
        if not meeting.live or not participant.joined:
            raise ValueError("the speaker must be in a live meeting")
        return self.spawn(meeting.media.speak(participant, text, language))

    def set_active_speaker(self, meeting, participant):
        """Called by the media timeline when an utterance begins."""
        if meeting.active_speaker == participant.key:
            return
        meeting.active_speaker = participant.key
        for stream in self.streams_for(meeting):
            stream.send_event(Event.ACTIVE_SPEAKER_CHANGE, user_id=participant.rtms_user_id,
                              user_name=participant.name)
        self.notify("speaking", meeting)

    def chat(self, meeting, participant, text):
        if not meeting.live or not participant.joined:
            raise ValueError("the sender must be in a live meeting")
        meeting.media.chat(participant, text)
        self.notify("chat", meeting)

    def set_video(self, meeting, participant, on):
        if participant.video == bool(on):
            return
        participant.video = bool(on)
        event = Event.PARTICIPANT_VIDEO_ON if on else Event.PARTICIPANT_VIDEO_OFF
        for stream in self.streams_for(meeting):
            stream.send_event(event, participants=[{"user_id": participant.rtms_user_id}])
        self.notify("video", meeting)

    def set_sharing(self, meeting, participant, on):
        if participant.sharing == bool(on):
            return
        if on:
            for other in meeting.participants.values():
                if other is not participant and other.sharing:
                    self.set_sharing(meeting, other, False)
        participant.sharing = bool(on)
        for stream in self.streams_for(meeting):
            if on:
                stream.send_event(Event.SHARING_START, user_id=participant.rtms_user_id, user_name=participant.name)
            else:
                stream.send_event(Event.SHARING_STOP)
        self.notify("sharing", meeting)

    # -- streams ---------------------------------------------------------------------------------------------------

    def streams_for(self, meeting, client_id=None):
        result = []
        for stream_id in meeting.stream_ids:
            stream = self.streams[stream_id]
            if stream.live and (client_id is None or stream.app.client_id == client_id):
                result.append(stream)
        return result

    def _check_can_stream(self, meeting, app):
        if not meeting.live:
            raise StreamRefused(3001, f"Meeting does not exist: {meeting.id}.", "meeting_not_live", 404)
        host_policy = self.effective_policy(meeting.host)
        if not host_policy["share_with_apps"]:
            raise StreamRefused(2310, "Failed to perform RTMS app operation", "host_cannot_approve")
        if not meeting.settings.get("share_with_apps", True):
            raise StreamRefused(2310, "Failed to perform RTMS app operation", "apps_disabled")
        if not host_policy["rtms_eligible"]:
            raise StreamRefused(2310, "Failed to perform RTMS app operation", "not_eligible")

    def start_stream(self, meeting, app, operator_participant, started_by="host", operator_user=None):
        """Zoom creates a stream for `app` on behalf of `operator_participant` (or `operator_user` when the
        operator is not in the meeting), then sends `meeting.rtms_started`."""
        self._check_can_stream(meeting, app)
        operator_id = operator_participant.user_id if operator_participant else (
            operator_user.user_id if operator_user else meeting.host.user_id)
        for stream in self.streams_for(meeting, app.client_id):
            if stream.operator_id == operator_id:
                return stream
        owner = self.users.get(operator_id)
        limit_policy = self.policies.get(("account", app.account_id), {})
        limit = limit_policy.get("concurrency_limit") or DEFAULT_CONCURRENCY_LIMIT
        in_use = sum(1 for s in self.streams.values() if s.live and s.app.account_id == app.account_id)
        if in_use >= limit:
            self.webhooks.send(app, "rtms.concurrency_limited", {
                "operator_id": operator_id, "concurrency_number": limit, "id_field": "meeting_uuid"})
            raise StreamRefused(2310, "Failed to perform RTMS app operation", "concurrency_limited")
        stream = Stream(self, meeting, app, operator_participant, operator_id, started_by)
        if operator_participant is None and owner is not None:
            stream.operator = meeting.participant(owner.user_id)
        self.streams[stream.id] = stream
        meeting.stream_ids.append(stream.id)
        meeting.pending_requests[:] = [r for r in meeting.pending_requests
                                       if not (r["client_id"] == app.client_id and r["user_id"] == operator_id)]
        log.info("event=stream_started meeting_uuid=%s stream_id=%s client_id=%s started_by=%s",
                 meeting.uuid, stream.id, app.client_id, started_by)
        self.send_rtms_started(stream)
        if in_use + 1 > 0.8 * limit:
            self.webhooks.send(app, "rtms.concurrency_near_limit", {
                "operator_id": operator_id, "concurrency_number": in_use + 1, "id_field": "meeting_uuid"})
        self.notify("stream_started", meeting)
        return stream

    def send_rtms_started(self, stream):
        """At the start, and again with new `server_urls` when its RTMS server failed (zoomsim/chaos.py)."""
        self.webhooks.send(stream.app, "meeting.rtms_started", {
            "meeting_uuid": stream.meeting.uuid, "operator_id": stream.operator_id, "rtms_stream_id": stream.id,
            "server_urls": self.signaling_url(stream)})

    def signaling_url(self, stream):
        return f"{stream.rtms_url}/signaling/{stream.id}"

    def media_url(self, stream, kind):
        return f"{stream.rtms_url}/media/{stream.id}/{kind}"

    def stop_stream(self, stream, reason):
        if not stream.live:
            return
        self._terminate(stream, StopReason(int(reason)))

    def _terminate(self, stream, reason, send_webhook=True):
        stream.cancel_timers()
        stream.stream_state = StreamState.TERMINATED
        stream.send_stream_state(reason)
        if stream.session_id is not None:
            stream.session_state = SessionState.STOPPED
            stream.send_session_state(stop_reason=reason)
        stream.state = "stopped"
        stream.ready = False
        stream.stop_reason = reason
        stream.stopped_at = self.clock.now_ms()
        stream.close_media()
        if stream.signaling is not None:
            stream.signaling.close(1000)
            stream.signaling = None
        self.ticker.forget(stream)
        log.info("event=stream_stopped meeting_uuid=%s stream_id=%s reason=%d", stream.meeting.uuid, stream.id,
                 int(reason))
        if send_webhook:
            self.webhooks.send(stream.app, "meeting.rtms_stopped", {
                "meeting_uuid": stream.meeting.uuid, "rtms_stream_id": stream.id, "stop_reason": int(reason)})
        self.notify("stream_stopped", stream.meeting)

    def pause_stream(self, stream):
        if stream.state not in ("active", "starting", "interrupted"):
            raise StreamRefused(2310, "Failed to perform RTMS app operation", "not_active")
        stream.paused = True
        stream.state = "paused"
        stream.stream_state = StreamState.PAUSED
        stream.send_stream_state()
        if stream.session_id is not None:
            stream.session_state = SessionState.PAUSED
            stream.send_session_state()
        log.info("event=stream_paused meeting_uuid=%s stream_id=%s", stream.meeting.uuid, stream.id)
        self.notify("stream_state", stream.meeting)

    def resume_stream(self, stream):
        if stream.state != "paused":
            raise StreamRefused(2310, "Failed to perform RTMS app operation", "not_paused")
        stream.paused = False
        stream.audio_next_tick = self.ticker.tick_index()  # nothing is buffered while paused
        stream.state = "active" if stream.ready else "starting"
        stream.stream_state = StreamState.RESUMED
        stream.send_stream_state()
        if stream.session_id is not None:
            stream.session_state = SessionState.RESUMED
            stream.send_session_state()
        log.info("event=stream_resumed meeting_uuid=%s stream_id=%s", stream.meeting.uuid, stream.id)
        self.notify("stream_state", stream.meeting)

    def stream_ready(self, stream):
        """CLIENT_READY_ACK arrived: announce the (possibly re-established) session and let media flow."""
        stream.ready = True
        first = not stream.ever_ready
        stream.ever_ready = True
        if stream.session_id is None:
            stream.session_id = secrets.token_hex(16)
        if stream.paused:
            stream.stream_state, stream.session_state = StreamState.PAUSED, SessionState.PAUSED
        else:
            stream.state = "active"
            stream.stream_state, stream.session_state = StreamState.ACTIVE, SessionState.STARTED
        stream.send_stream_state()
        stream.send_session_state()
        if first:
            stream.send_event(Event.FIRST_PACKET_TIMESTAMP)
        self.ticker.track(stream)
        log.info("event=stream_ready meeting_uuid=%s stream_id=%s first=%s", stream.meeting.uuid, stream.id, first)
        self.notify("stream_state", stream.meeting)

    def signaling_lost(self, stream, stop_reason, interrupted_webhook=True):
        """The signaling socket broke (closed, dropped, or 3 keep-alives missed): Zoom interrupts every
        connection and waits 60 s for the client to come back. A failed RTMS server (zoomsim/chaos.py) sends
        `rtms_started` with the new server instead of `rtms_interrupted`."""
        if not stream.live:
            return
        stream.ready = False
        stream.close_media()
        stream.state = "interrupted"
        stream.stream_state = StreamState.INTERRUPTED
        self.ticker.forget(stream)
        log.info("event=stream_interrupted meeting_uuid=%s stream_id=%s", stream.meeting.uuid, stream.id)
        if interrupted_webhook:
            self.webhooks.send(stream.app, "meeting.rtms_interrupted", {
                "meeting_uuid": stream.meeting.uuid, "rtms_stream_id": stream.id})
        window = SIGNALING_RECONNECT_WINDOW_S * self.config.reconnect_scale
        if stream.reconnect_timer:
            stream.reconnect_timer.cancel()
        stream.reconnect_timer = asyncio.get_running_loop().call_later(
            window, self._reconnect_timeout, stream, stop_reason)
        self.notify("stream_state", stream.meeting)

    def _reconnect_timeout(self, stream, stop_reason):
        stream.reconnect_timer = None
        if stream.live and stream.signaling is None:
            self.stop_stream(stream, stop_reason)

    def media_lost(self, stream, kinds, stop_reason):
        """One media socket broke while signaling lives: EVENT_UPDATE 7, then 65 s to reconnect it."""
        if not stream.live:
            return
        stream.send_event(Event.MEDIA_CONNECTION_INTERRUPTED)
        window = MEDIA_RECONNECT_WINDOW_S * self.config.reconnect_scale
        for kind in kinds:
            if kind in stream.media_timers:
                stream.media_timers[kind].cancel()
            stream.media_timers[kind] = asyncio.get_running_loop().call_later(
                window, self._media_timeout, stream, kind, stop_reason)
        self.notify("stream_state", stream.meeting)

    def _media_timeout(self, stream, kind, stop_reason):
        stream.media_timers.pop(kind, None)
        if stream.live and kind not in stream.media:
            self.stop_stream(stream, stop_reason)

    def signaling_reconnected(self, stream):
        if stream.reconnect_timer:
            stream.reconnect_timer.cancel()
            stream.reconnect_timer = None
        if stream.state == "interrupted":
            stream.state = "paused" if stream.paused else "starting"
        self.notify("stream_state", stream.meeting)

    def media_reconnected(self, stream, kinds):
        for kind in kinds:
            timer = stream.media_timers.pop(kind, None)
            if timer:
                timer.cancel()

    # -- requests, approval and auto-start ----------------------------------------------------------------------

    def request_stream(self, meeting, app, participant, source="app"):
        """A participant's in-client startRTMS (or an auto-start that needs approval): start at once when allowed,
        else queue a request for the host's modal. Returns ("started", stream) or ("pending", request)."""
        self._check_can_stream(meeting, app)
        host = meeting.host_participant()
        needs_approval = meeting.settings.get("require_host_approval", True) and participant.role not in (
            "host", "co-host")
        if needs_approval and (host is None or not host.joined):
            raise StreamRefused(2308, "Request cannot be sent until the host has joined", "host_not_joined", 403)
        if not needs_approval:
            return "started", self.start_stream(meeting, app, participant, started_by="app" if source == "app" else
                                                source)
        for request in meeting.pending_requests:
            if request["client_id"] == app.client_id and request["participant_key"] == participant.key:
                return "pending", request
        request = {"id": secrets.token_hex(6), "client_id": app.client_id, "app_name": app.name,
                   "participant_key": participant.key, "user_id": participant.user_id, "user_name": participant.name,
                   "source": source, "created_at": self.clock.now_ms()}
        meeting.pending_requests.append(request)
        log.info("event=stream_requested meeting_uuid=%s client_id=%s key=%s source=%s", meeting.uuid,
                 app.client_id, participant.key, source)
        self.notify("request", meeting)
        return "pending", request

    def _take_request(self, meeting, request_id):
        for request in meeting.pending_requests:
            if request["id"] == request_id:
                meeting.pending_requests.remove(request)
                return request
        raise KeyError(request_id)

    def approve_request(self, meeting, request_id):
        request = self._take_request(meeting, request_id)
        participant = meeting.participants[request["participant_key"]]
        stream = self.start_stream(meeting, self.apps[request["client_id"]], participant,
                                   started_by="auto" if request["source"] == "auto" else "host")
        self.notify("request", meeting)
        return stream

    def report_request_status(self, meeting, app, participant, status):
        """Zoom's rtms.request_status (docs/ZOOM.md §2.1: announced 2026-10-30, payload our decision): the
        outcome of a participant's in-client request, so the app can say its real cause. `status` is one of
        pending, approved, denied, host_not_joined, apps_disabled, host_cannot_approve."""
        if participant is None or not participant.user_id:
            return None  # a guest: Zoom has no user to name
        return self.webhooks.send(app, "rtms.request_status", {
            "meeting_uuid": meeting.uuid, "operator_id": participant.user_id, "request_status": status})

    def deny_request(self, meeting, request_id):
        request = self._take_request(meeting, request_id)
        log.info("event=stream_denied meeting_uuid=%s client_id=%s", meeting.uuid, request["client_id"])
        self.notify("request", meeting)
        return request

    def disable_app(self, meeting, client_id):
        for stream in self.streams_for(meeting, client_id):
            self.stop_stream(stream, StopReason.HOST_DISABLED_APP)
        meeting.pending_requests[:] = [r for r in meeting.pending_requests if r["client_id"] != client_id]
        self.notify("app_disabled", meeting)

    def _auto_start(self, meeting, participant):
        if participant.user is None:
            return
        for client_id in self.effective_policy(participant.user)["auto_start_apps"] or []:
            app = self.apps.get(client_id)
            if app is None:
                continue
            same_account = participant.account_id == meeting.host.account_id
            try:
                if same_account or not meeting.settings.get("require_host_approval", True):
                    self.start_stream(meeting, app, participant, started_by="auto")
                else:
                    self.request_stream(meeting, app, participant, source="auto")
            except StreamRefused as refused:
                log.info("event=auto_start_refused meeting_uuid=%s client_id=%s outcome=%s", meeting.uuid,
                         client_id, refused.outcome)

    def deauthorize(self, app, user):
        self.tokens.revoke(app.client_id, user.user_id)
        for stream in list(self.streams.values()):
            if stream.live and stream.app is app and stream.operator_id == user.user_id:
                self.stop_stream(stream, StopReason.STREAM_REVOKED)
        now = self.clock.now_ms()
        self.webhooks.send(app, "app_deauthorized", {
            "account_id": user.account_id, "user_id": user.user_id, "client_id": app.client_id,
            "deauthorization_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000)),
            "signature": secrets.token_hex(32), "user_data_retention": "false"})

    # -- webhooks about meetings ----------------------------------------------------------------------------------

    def _participant_payload(self, participant, **fields):
        """Zoom's participant object (docs/ZOOM.md §2.2b): `user_id` is the per-meeting participant id (digits, the
        same number the RTMS messages carry); the Zoom user id is `id` and `participant_user_id`, both absent
        for guests. There is no role: the host is the participant whose `id` is `object.host_id`."""
        payload = {"user_id": str(participant.rtms_user_id), "user_name": participant.name,
                   "email": participant.email, **fields}
        if participant.user is not None:
            payload["id"] = payload["participant_user_id"] = participant.user_id
        return payload

    def _role_changed_webhook(self, meeting, participant, old_role, new_role):
        """Its participant object has no `id` in Zoom's schema: the Zoom user id is `participant_user_id`."""
        person = self._participant_payload(participant, date_time=iso_time(self.clock.now_ms()),
                                           old_role=ZOOM_ROLE_NAMES[old_role], new_role=ZOOM_ROLE_NAMES[new_role])
        person.pop("id", None)
        self._meeting_webhook(meeting, "meeting.participant_role_changed", {"participant": person})

    def _meeting_webhook(self, meeting, event, extra):
        """Meeting events nest under `payload.object`, with the host's `account_id` beside it (docs/ZOOM.md §2.2b;
        the RTMS events stay flat, docs/ZOOM.md §2.2)."""
        meeting_object = {"id": str(meeting.id), "uuid": meeting.uuid, "host_id": meeting.host.user_id,
                          "topic": meeting.topic, "type": MEETING_TYPE_SCHEDULED,
                          "start_time": iso_time(meeting.started_at or meeting.created_at), "timezone": "UTC",
                          "duration": SCHEDULED_DURATION_MIN, **extra}
        payload = {"account_id": meeting.host.account_id, "object": meeting_object}
        for app in self.apps.values():
            if app.wants(event):
                self.webhooks.send(app, event, payload)

    def reset(self):
        for stream in list(self.streams.values()):
            if stream.live:
                self._terminate(stream, StopReason.EXIT_SIGNAL, send_webhook=False)
        self.meetings.clear()
        self.streams.clear()
        self.faults.clear()
        self.webhooks.clear()
        self.notify("reset", None)
