"""A private stack for the stream tests: the simulator with Zoom's timings scaled down, daphne receiving its
webhooks, real Celery workers holding streams, beat running the reconciler.

Each stack has its own Redis namespace (so its queue, leases and groups are not shared with the session-wide
worker of other tests), its own MEDIA_ROOT and its own Zoom app.
"""

import contextlib
import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from tests import processes
from tests.consent_support import register_with_sim
from tests.zoomsim_process import run_zoomsim

# Zoom's 10 s keep-alive becomes 1 s, its 60 s reconnection window 6 s.
SCALE = 0.1


class Stack:
    def __init__(self, sim, env, tmp_path, app):
        self.sim = sim
        self.env = env
        self.tmp_path = Path(tmp_path)
        self.app = app
        self.web = None
        self.workers = []
        self.beat = None
        self.media_root = Path(env["MEDIA_ROOT"])
        self.namespace = env["REDIS_NAMESPACE"]

    # what a stream stored ---------------------------------------------------------------------------------------

    def stream_files(self, stream_id):
        """Every file of the stream: uploaded (under MEDIA_ROOT) or still in a worker's spool (`<host>/p<pid>/`)."""
        roots = [self.media_root / "rtms" / stream_id, *Path(self.env["RTMS_SPOOL_DIR"]).glob(f"*/*/rtms/{stream_id}")]
        return [path for root in roots if root.exists() for path in root.rglob("*") if path.is_file()]

    # processes ------------------------------------------------------------------------------------------------

    def audio_frames_stored(self, segments):
        """Zoom's frames stored in these mixed audio segments (MediaFile rows): their index's `frames`, each WAV
        checked to hold its segment's timeline (first to last timestamp and one frame, pauses written as silence:
        docs/STREAMS.md "Audio keeps Zoom's timeline")."""
        for segment in segments:
            wav_frames = ((self.media_root / segment.path).stat().st_size - 44) // 640
            timeline_frames = 0 if segment.first_timestamp is None else (
                (segment.last_timestamp - segment.first_timestamp) // 20 + 1)
            assert wav_frames == timeline_frames, (segment.path, wav_frames, timeline_frames)
        return sum(segment.frames for segment in segments)

    def start_worker(self, name):
        worker = processes.start_worker(self.env, self.tmp_path, name)
        self.workers.append(worker)
        return worker

    def stop_all(self):
        for proc in [self.beat, *self.workers, self.web]:
            if proc is not None:
                proc.stop()

    # the simulated meeting -----------------------------------------------------------------------------------

    def start_meeting(self, topic="Weekly sync"):
        response = self.sim.post("/_sim/meetings", json={
            "topic": topic, "host": {"name": "Ana"}, "participants": [{"name": "Ben"}],
            "settings": {"share_with_apps": True, "require_host_approval": False}, "start": True,
        })
        assert response.status_code in (200, 201), response.text
        return response.json()

    def start_stream(self, meeting, key=None):
        host_key = key or next(p["key"] for p in meeting["participants"] if p["role"] == "host")
        response = self.sim.post(f"/_sim/meetings/{meeting['id']}/streams",
                                 json={"client_id": self.app.client_id, "key": host_key, "started_by": "host"})
        assert response.status_code in (200, 201), response.text
        return response.json()["id"]

    def hold_stream(self, django_db_blocker, topic="Weekly sync"):
        """A new meeting whose stream a worker holds: (the simulator's meeting, our stream row, active)."""
        from rtms.models import StreamSession

        meeting = self.start_meeting(topic)
        stream_id = self.start_stream(meeting)
        row = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
            rtms_stream_id=stream_id, state="active").first(), "the stream to be held", timeout=30)
        return meeting, row

    def oauth_tokens(self, user_id):
        """`user_id` installs the app through the simulator's OAuth (authorization code, then the token request):
        Zoom's answer, with access_token, refresh_token and expires_in."""
        redirect = self.web.url + "/zoom/oauth/callback"
        response = self.sim.get("/oauth/authorize", params={"response_type": "code", "client_id": self.app.client_id,
                                                            "redirect_uri": redirect, "user_id": user_id},
                                allow_redirects=False)
        code = parse_qs(urlparse(response.headers["location"]).query)["code"][0]
        return self.sim.post("/oauth/token", data={"grant_type": "authorization_code", "code": code,
                                                   "redirect_uri": redirect},
                             auth=(self.app.client_id, self.app.client_secret)).json()

    def speak(self, meeting, text, who="host"):
        key = next(p["key"] for p in meeting["participants"] if p["role"] == who or p["name"] == who)
        response = self.sim.post(f"/_sim/meetings/{meeting['id']}/speak", json={"key": key, "text": text})
        assert response.status_code == 200, response.text
        return response.json()

    def sim_stream(self, stream_id):
        return self.sim.get(f"/_sim/streams/{stream_id}").json()

    def signaling_connections(self, stream_id):
        return [c for c in self.sim_stream(stream_id)["connections"] if c["kind"] == "signaling"]

    def fault(self, **body):
        response = self.sim.post("/_sim/faults", json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()


def overlapping_live_connections(connections):
    """Pairs of connections that were open at the same moment (closed_at None = still open)."""
    spans = sorted((c["opened_at"], c["closed_at"] or float("inf"), c["id"]) for c in connections)
    return [(a[2], b[2]) for i, a in enumerate(spans) for b in spans[i + 1:] if b[0] < a[1]]


@contextlib.contextmanager
def streams_stack(stack_env, tmp_path, name, django_db_blocker, workers=("worker-a",), beat=True, database="default",
                  **env_overrides):
    from zoomapp.marketplace.models import ZoomApp

    tmp_path = Path(tmp_path)
    with run_zoomsim(tmp_path / "zoomsim", keepalive_interval=10 * SCALE, reconnect_scale=SCALE,
                     retry_scale=0.001) as sim:
        env = dict(stack_env)
        env.update({
            "ZOOM_OAUTH_URL": sim.http_url, "ZOOM_API_URL": f"{sim.http_url}/v2",
            "REDIS_NAMESPACE": f"{os.environ['REDIS_NAMESPACE']}-{name}",
            "MEDIA_ROOT": str(tmp_path / "media"), "RTMS_SPOOL_DIR": str(tmp_path / "spool"),
            "RTMS_RECONNECT_SCALE": str(SCALE), "RTMS_LEASE_TTL": "1.5", "RTMS_RECONCILE_INTERVAL": "0.5",
        })
        env.update(env_overrides)
        app = ZoomApp(name=f"Recorder {name}", client_id=f"rtmsTest{secrets.token_hex(4)}",
                      client_secret=secrets.token_hex(16), webhook_secret_token=secrets.token_hex(16))
        with django_db_blocker.unblock():
            app.save(using=database)
        stack = Stack(sim, env, tmp_path, app)
        try:
            stack.web = processes.start_daphne(env, tmp_path)
            for worker in workers:
                stack.start_worker(worker)
            if beat:
                stack.beat = processes.start_beat(env, tmp_path)
                processes.wait_for(lambda: "is starting." in stack.beat.log_text(), 30,  # its banner
                                   "beat to start", process=stack.beat)
            register_with_sim(sim, stack.web.url, app, account_id="acctRecorder",
                              redirect_url=stack.web.url + "/zoom/oauth/callback")
            yield stack
        finally:
            stack.stop_all()


def wait_for_row(django_db_blocker, query, what, timeout=20.0):
    """Poll the database (fresh reads) until `query()` returns something truthy."""
    from django.db import connection

    def check():
        with django_db_blocker.unblock():
            try:
                return query()
            finally:
                connection.close()

    return processes.wait_for(check, timeout, what, interval=0.1)


