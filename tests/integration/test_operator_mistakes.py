"""What an operator deploying the product gets wrong, and what they see then: a FIELD_ENCRYPTION_KEY other than
the one the secrets were saved with, `register_zoom_app` run from a script without Zoom's secrets, and the
access log of daphne started as deployed.

Against real processes: `manage.py register_zoom_app` without a terminal (as `docker compose exec -T` or Ansible
run it), and daphne started as the Procfile starts it, with no DEBUG variable where production answers matter.
"""

import re
import secrets
import shlex
import subprocess
import sys

import pytest
import requests
from django.db import connection

from tests import processes
from tests.consent_support import make_app
from tests.integration.test_production_settings import production_env
from tests.webhook_support import signed_headers
from zoomapp.marketplace.models import ZoomApp

pytestmark = pytest.mark.django_db(transaction=True)

THROUGH_THE_PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


def register_zoom_app(env, *args):
    """The command as a script runs it: no terminal, so it cannot ask for the secrets."""
    return subprocess.run([sys.executable, "manage.py", "register_zoom_app", *args], cwd=processes.ROOT, env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def stored_ciphertexts(client_id):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT client_secret, webhook_secret_token FROM {ZoomApp._meta.db_table} "
                       "WHERE client_id = %s", [client_id])
        return cursor.fetchone()


# --- register_zoom_app without Zoom's secrets ---------------------------------------------------------------------


def test_a_new_app_without_zoom_secrets_is_refused_naming_what_to_set(stack_env):
    client_id = f"cmd{secrets.token_hex(4)}"
    env = {k: v for k, v in stack_env.items() if not k.startswith("ZOOM_APP_")}

    neither = register_zoom_app(env, "--name", "Summarizer", "--client-id", client_id)
    assert neither.returncode != 0 and "Saved" not in neither.stdout
    assert "ZOOM_APP_CLIENT_SECRET and ZOOM_APP_WEBHOOK_SECRET_TOKEN" in neither.stderr
    assert "Nothing was saved" in neither.stderr and "Traceback" not in neither.stderr

    one = register_zoom_app({**env, "ZOOM_APP_CLIENT_SECRET": "cmd-s3cret-client"}, "--name", "Summarizer",
                            "--client-id", client_id)
    assert one.returncode != 0 and "set ZOOM_APP_WEBHOOK_SECRET_TOKEN (" in one.stderr
    assert "s3cret" not in one.stdout + one.stderr
    assert not ZoomApp.objects.filter(client_id=client_id).exists()


def test_invented_secrets_only_when_asked_for_and_a_stored_app_keeps_its_own(stack_env):
    client_id = f"cmd{secrets.token_hex(4)}"
    env = {k: v for k, v in stack_env.items() if not k.startswith("ZOOM_APP_")}

    invented = register_zoom_app(env, "--name", "Sim only", "--client-id", client_id, "--generate-secrets")
    assert invented.returncode == 0, invented.stderr
    app = ZoomApp.objects.get(client_id=client_id)
    assert len(app.client_secret) >= 24 and len(app.webhook_secret_token) >= 24

    renamed = register_zoom_app(env, "--name", "Sim only 2", "--client-id", client_id)
    assert renamed.returncode == 0, renamed.stderr
    again = ZoomApp.objects.get(client_id=client_id)
    assert (again.name, again.client_secret, again.webhook_secret_token) == (
        "Sim only 2", app.client_secret, app.webhook_secret_token)


def test_the_demo_is_registered_with_invented_secrets_and_the_exact_redirect_url(stack_env, daphne, zoomsim):
    """bin/run's `register_zoom_app --demo`: the simulator is the only Zoom that calls it, so its secrets are
    invented; the simulator validates the webhook endpoint with them and holds the redirect URL OAuth sends."""
    zoomsim.registered_apps.append("demoNotetakerApp")  # deleted from the simulator after the session
    result = register_zoom_app({**stack_env, "SITE_URL": daphne.url}, "--demo")
    assert result.returncode == 0, result.stderr
    assert "Registered with the Zoom simulator" in result.stdout
    registered = {app["client_id"]: app for app in zoomsim.get("/_sim/apps").json()}["demoNotetakerApp"]
    assert registered["redirect_url"] == f"{daphne.url}/zoom/oauth/callback/demoNotetakerApp"
    assert registered["validated_at"]


# --- a FIELD_ENCRYPTION_KEY that is not the one the secrets were saved with ----------------------------------------


def test_register_zoom_app_with_another_key_says_which_variable_is_wrong_and_changes_nothing(stack_env):
    app = make_app("Notetaker")
    before = stored_ciphertexts(app.client_id)
    env = {**stack_env, "SECRET_KEY": secrets.token_urlsafe(50), "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(50),
           "ZOOM_APP_CLIENT_SECRET": "new-s3cret-client", "ZOOM_APP_WEBHOOK_SECRET_TOKEN": "new-s3cret-webhook"}

    result = register_zoom_app(env, "--name", "Renamed", "--client-id", app.client_id)
    assert result.returncode != 0
    assert "does not decrypt with this process's FIELD_ENCRYPTION_KEY" in result.stderr
    assert "Give every machine the FIELD_ENCRYPTION_KEY the secrets were saved with" in result.stderr
    assert "Traceback" not in result.stderr and "InvalidToken" not in result.stderr
    assert "Nothing was saved" in result.stderr
    assert stored_ciphertexts(app.client_id) == before and ZoomApp.objects.get(pk=app.pk).name == "Notetaker"


def production_web_env(stack_env):
    """.env.example's environment with no DEBUG variable (keys of its own), on this run's database and Redis."""
    env = production_env(DATABASE_URL=stack_env["DATABASE_URL"], REDIS_URL=stack_env["REDIS_URL"],
                         REDIS_NAMESPACE=stack_env["REDIS_NAMESPACE"], DATA_DIR=stack_env["DATA_DIR"],
                         ALLOWED_HOSTS="127.0.0.1")
    env.pop("DEBUG")
    return env


@pytest.fixture
def web_with_another_key(stack_env, tmp_path):
    """A production web process whose FIELD_ENCRYPTION_KEY is not the test's."""
    web = processes.start_daphne(production_web_env(stack_env), tmp_path)
    yield web
    web.stop()


def test_a_web_process_with_another_key_answers_webhooks_500_without_details_and_fails_its_health(
        web_with_another_key):
    web = web_with_another_key
    app = make_app("Notetaker")
    body = b'{"event": "meeting.started", "payload": {}}'  # never reached: the app's secret is read first
    delivered = requests.post(f"{web.url}{app.webhook_path}", data=body, timeout=10, headers={
        "content-type": "application/json", **THROUGH_THE_PROXY, **signed_headers(app.webhook_secret_token, body)})
    assert delivered.status_code == 500
    assert not re.search(r"FIELD_ENCRYPTION_KEY|SECRET_KEY|decrypt|Token", delivered.text)
    processes.wait_for(lambda: "FIELD_ENCRYPTION_KEY" in web.log_text(), 10, "the cause in the log", process=web)
    cause = next(line for line in web.log_text().splitlines() if "FIELD_ENCRYPTION_KEY" in line)
    assert cause.startswith("ts=") and "level=error" in cause and app.webhook_path in cause

    public = requests.get(f"{web.url}/healthz", headers=THROUGH_THE_PROXY, timeout=10)
    assert public.status_code == 503
    assert public.json() == {"status": "unhealthy", "database": "ok", "secrets": "error", "failing": ["secrets"]}
    operator = requests.get(f"{web.url}/healthz", timeout=10)  # directly from loopback: an operator
    assert operator.status_code == 503
    assert "does not decrypt with this process's FIELD_ENCRYPTION_KEY" in operator.json()["secrets"]


# --- daphne's access log ------------------------------------------------------------------------------------------


def deployed_web_argv(port):
    """The Procfile's web command (docker-compose.yml's and the Dockerfile's are the same:
    tests/unit/test_deploy_files.py), on a free port of loopback."""
    line = next(line for line in (processes.ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    argv = shlex.split(line.removeprefix("web:").replace("${PORT:-8000}", str(port)))
    assert argv[0] == "daphne" and argv[argv.index("-b") + 1] == "0.0.0.0"
    argv[argv.index("-b") + 1] = "127.0.0.1"
    return [str(processes.VENV_BIN / "daphne"), *argv[1:]]


def test_daphne_started_as_deployed_logs_no_oauth_code_and_only_logfmt(stack_env, tmp_path):
    port = processes.free_port()
    web = processes.Process("web", deployed_web_argv(port), production_web_env(stack_env), tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        processes.wait_for(lambda: requests.get(f"{url}/healthz", timeout=2).status_code == 200, 30,
                           "the web process to answer", process=web)
        code = secrets.token_urlsafe(16)
        callback = f"{url}/zoom/oauth/callback/noSuchApp?code={code}&state=abc"
        assert requests.get(callback, allow_redirects=False, timeout=10).status_code == 301  # to https
        assert requests.get(callback, headers=THROUGH_THE_PROXY, timeout=10).status_code == 404
    finally:
        web.stop()
    lines = [line for line in web.log_text().splitlines() if line.strip()]
    assert code not in web.log_text()
    # What the product logs itself is still there, as logfmt: the callback's 404, by method and path.
    assert any("GET /zoom/oauth/callback/noSuchApp" in line and "status_code=404" in line for line in lines), lines
    assert all(line.startswith("ts=") for line in lines), lines
