"""Nothing secret in the logs (docs/SECURITY.md "Production defaults"): real flows through daphne, a Celery worker
holding the stream and beat, then every line those processes wrote is searched for each secret the flows used. The
lines still name the meeting and the stream."""

import json
import os
import secrets
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import websockets.sync.client
from django.conf import settings
from django.utils import timezone

from rtms.client.protocol import handshake_signature
from tests import processes
from tests.consent_support import context_for, register_with_sim
from tests.integration.streams_stack import streams_stack, wait_for_row
from tests.webhook_support import event, signed_headers
from zoomapp.marketplace import oauth

# In the stack's DATABASE_URL: the test PostgreSQL trusts loopback, so it accepts this password too.
DATABASE_PASSWORD = "dbPasswordNeverLogged"


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    database = urlsplit(stack_env["DATABASE_URL"])
    assert database.scheme.startswith("postgres"), "a password in DATABASE_URL needs PostgreSQL"
    database_url = database._replace(
        netloc=f"{database.username}:{DATABASE_PASSWORD}@{database.hostname}:{database.port}").geturl()
    with streams_stack(stack_env, tmp_path_factory.mktemp("secrets"), "secrets", django_db_blocker,
                       DATABASE_URL=database_url) as stack:
        yield stack


def grant_tokens(django_db_blocker, app, user_id):
    from zoomapp.marketplace.models import UserAuthorization

    with django_db_blocker.unblock():
        grant = UserAuthorization.objects.get(app=app, user_id=user_id)
        return grant.access_token, grant.refresh_token


def test_the_processes_log_the_flows_but_none_of_their_secrets(stack, django_db_blocker):
    from rtms.models import StreamSession
    from zoomapp.marketplace.models import UserAuthorization

    app, web = stack.app, stack.web.url
    used = {"client secret": app.client_secret, "webhook secret token": app.webhook_secret_token,
            "database password": DATABASE_PASSWORD, "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY}
    meeting = stack.start_meeting("Secrets stay out of logs")
    host = next(p for p in meeting["participants"] if p["role"] == "host")

    # The host installs the app: Zoom redirects to our callback with an authorization code.
    register_with_sim(stack.sim, web, app, account_id="acctRecorder")  # our install's redirect: SITE_URL's
    consented = stack.sim.get("/oauth/authorize", allow_redirects=False, params={
        "response_type": "code", "client_id": app.client_id, "redirect_uri": oauth.redirect_uri(app),
        "user_id": host["user_id"]})
    used["authorization code"] = parse_qs(urlsplit(consented.headers["location"]).query)["code"][0]
    installed = requests.get(f"{web}/zoom/oauth/callback/{app.client_id}",
                             params={"code": used["authorization code"]}, timeout=10)
    assert installed.status_code == 200, installed.text
    replayed = requests.get(installed.url, timeout=10)  # a spent code: Zoom refuses it, Django logs the 400
    assert replayed.status_code == 400, replayed.text
    used["access token"], used["refresh token"] = grant_tokens(django_db_blocker, app, host["user_id"])

    # The host opens the panel: Zoom's app context in the header and in the body, our panel token back.
    used["app context"] = context_for(app, meeting["uuid"], host["user_id"], role="host")
    page = requests.get(f"{web}/panel/{app.client_id}/", headers={"x-zoom-app-context": used["app context"]},
                        timeout=10)
    assert page.status_code == 200
    bound = requests.post(f"{web}/panel/{app.client_id}/api/context", timeout=10,
                          json={"context": used["app context"], "name": host["name"]})
    assert bound.status_code == 200, bound.text
    used["panel token"] = bound.json()["token"]
    with websockets.sync.client.connect(f"{web.replace('http', 'ws')}/ws/panel/?token={used['panel token']}",
                                        open_timeout=10) as panel_socket:
        assert json.loads(panel_socket.recv(timeout=10))["type"] == "state"
    with websockets.sync.client.connect(f"{web.replace('http', 'ws')}/ws/panel/?token=x{used['panel token']}",
                                        open_timeout=10) as panel_socket:
        assert json.loads(panel_socket.recv(timeout=10))["type"] == "refused"

    # The host starts sharing: the token has expired (refreshed first), and Zoom refuses the refreshed one once
    # (401: refreshed again); then Zoom starts the stream, tells us by a signed webhook, and a worker holds it.
    with django_db_blocker.unblock():
        UserAuthorization.objects.filter(app=app, user_id=host["user_id"]).update(expires_at=timezone.now())
    stack.fault(kind="rest_error", path_contains="rtms_app/status", status=401, code=124, message="Invalid token")
    started = requests.post(f"{web}/panel/{app.client_id}/api/action", json={"action": "request"}, timeout=10,
                            headers={"Authorization": f"Bearer {used['panel token']}"})
    assert started.status_code == 200, started.text
    stream = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        meeting_uuid=meeting["uuid"], state="active").first(), "the stream to be held", timeout=30)
    used["refreshed access token"], used["refreshed refresh token"] = grant_tokens(
        django_db_blocker, app, host["user_id"])
    assert used["refreshed refresh token"] != used["refresh token"]
    used["RTMS handshake signature"] = handshake_signature(app.client_id, app.client_secret, meeting["uuid"],
                                                           stream.rtms_stream_id)
    body = json.dumps(event("endpoint.url_validation", {"plainToken": "logsHoldNoSecrets"})).encode()
    headers = signed_headers(app.webhook_secret_token, body)
    used["webhook signature"] = headers["x-zm-signature"]
    validated = requests.post(web + app.webhook_path, data=body, timeout=10,
                              headers={"content-type": "application/json", **headers})
    used["webhook validation answer"] = validated.json()["encryptedToken"]

    stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")
    processes.wait_for(lambda: "stream released" in stack.workers[0].log_text(), 30, "the stream to be let go")
    logs = {proc.name: proc.log_text() for proc in (stack.web, *stack.workers, stack.beat)}
    leaked = [(what, name) for what, value in used.items() for name, text in logs.items() if value in text]
    assert not leaked, leaked
    # What the flows did is still there, by meeting and stream (logfmt quotes a value holding "=").
    assert f'msg="panel bound" meeting="{meeting["uuid"]}"' in logs["daphne"]
    assert f"Bad Request: /zoom/oauth/callback/{app.client_id}" in logs["daphne"]
    assert logs["daphne"].count("token refreshed") == 2 and "rtms_app status updated" in logs["daphne"]
    assert f'msg="stream claimed" stream={stream.rtms_stream_id} meeting="{meeting["uuid"]}"' in logs["worker-a"]


def test_the_development_stack_prints_no_oauth_code_nor_redis_password(tmp_path):
    """bin/run's stack (bin/devstack.py), its Redis URL answering not: it starts an embedded one."""
    redis_password = "redisPasswordNeverPrinted"
    env = {key: value for key, value in os.environ.items() if key not in (
        "DATABASE_URL", "DATABASE_TEST_NAME", "SITE_URL", "ZOOM_OAUTH_URL", "ZOOM_API_URL")}
    env.update(DATA_DIR=str(tmp_path), REDIS_URL=f"redis://:{redis_password}@127.0.0.1:{processes.free_port()}/0")
    web_port = processes.free_port()
    argv = [sys.executable, str(processes.ROOT / "bin" / "devstack.py"), "--web-port", str(web_port),
            "--sim-port", str(processes.free_port()), "--sim-rtms-port", str(processes.free_port()),
            "--redis-port", str(processes.free_port())]
    devstack = processes.Process("devstack", argv, env, tmp_path)
    try:
        processes.wait_for(lambda: "Press Ctrl-C to stop everything." in devstack.log_text(), 120,
                           "the development stack to be up", process=devstack)
        code = secrets.token_urlsafe(16)
        callback = f"http://127.0.0.1:{web_port}/zoom/oauth/callback/noSuchApp?code={code}"
        assert requests.get(callback, timeout=10).status_code == 404
        processes.wait_for(lambda: "GET /zoom/oauth/callback/noSuchApp" in devstack.log_text(), 10,
                           "the 404 in the web's lines", process=devstack)
    finally:
        devstack.stop(timeout=30)
    printed = devstack.log_text()
    assert code not in printed and redis_password not in printed
    assert "no Redis answers at redis://:**@127.0.0.1" in printed


def test_a_mistyped_redis_url_is_refused_without_its_password():
    password = "redisPasswordNeverPrinted"
    env = {**os.environ, "REDIS_URL": f"reddis://:{password}@127.0.0.1:6379/0"}
    check = subprocess.run([sys.executable, "manage.py", "check"], cwd=processes.ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode != 0
    assert "REDIS_URL must be a URL" in check.stderr and password not in check.stderr + check.stdout
