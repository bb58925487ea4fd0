"""Production defaults, as an operator meets them: the environment of .env.example (its secrets filled in as its
comments say), `manage.py check --deploy`, start-up refusing missing keys, and a web process started with no DEBUG
variable at all answering as production does (https only, secure cookies, one HSTS value)."""

import os
import secrets
import subprocess
import sys

import pytest
import requests

from tests import processes
from tests.consent_support import make_app

ROOT = processes.ROOT
SECRETS = ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "OPERATOR_TOKEN")


def env_example():
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def production_env(**overrides):
    """.env.example's environment, its secrets generated, on a clean process environment (nothing the test run set,
    such as DEBUG or DJANGO_ALLOW_ASYNC_UNSAFE, leaks in)."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    generated = {name: secrets.token_urlsafe(50) for name in SECRETS}
    return {**base, **env_example(), **generated, **overrides}


def manage(env, *args):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_env_example_documents_every_secret_empty_so_a_copy_cannot_start_unfilled():
    example = env_example()
    assert {name: example[name] for name in SECRETS} == dict.fromkeys(SECRETS, "")
    assert example["DEBUG"] == "false"
    assert "secrets.token_urlsafe(50)" in (ROOT / ".env.example").read_text()


def test_check_deploy_with_the_production_environment_of_env_example_reports_nothing():
    result = manage(production_env(), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("missing, named", [
    ({"SECRET_KEY": ""}, "SECRET_KEY must be set when DEBUG is off"),
    ({"FIELD_ENCRYPTION_KEY": ""}, "FIELD_ENCRYPTION_KEY must be set, and differ from SECRET_KEY"),
    ({"SECRET_KEY": "same-key-" + "x" * 50, "FIELD_ENCRYPTION_KEY": "same-key-" + "x" * 50},
     "FIELD_ENCRYPTION_KEY must be set, and differ from SECRET_KEY"),
])
def test_start_up_without_the_production_keys_stops_saying_which_to_set_and_how(missing, named):
    env = production_env(**missing)
    env.pop("DEBUG")  # DEBUG not set at all is production too
    result = manage(env, "check")
    assert result.returncode != 0
    assert named in result.stderr
    assert 'python -c "import secrets; print(secrets.token_urlsafe(50))"' in result.stderr


@pytest.mark.parametrize("unsafe, named", [
    ({"SITE_URL": None}, "SITE_URL must be set when DEBUG is off"),
    ({"ZOOM_OAUTH_URL": "http://127.0.0.1:9100"}, "ZOOM_OAUTH_URL must be an https URL when DEBUG is off"),
    ({"ZOOM_API_URL": "http://api.zoom.us/v2"}, "ZOOM_API_URL must be an https URL when DEBUG is off"),
], ids=["no-site-url", "oauth-over-http", "api-over-http"])
def test_start_up_refuses_what_would_send_zoom_credentials_astray(unsafe, named):
    """Zoom's URLs default to Zoom's own over https, and the deployment's own URL must be given: a forgotten one
    never falls back to a development address, where the client secret and tokens would go in plain text."""
    env = production_env(**{k: v for k, v in unsafe.items() if v is not None})
    for name in [k for k, v in unsafe.items() if v is None] + ["DEBUG"]:
        env.pop(name)
    result = manage(env, "check")
    assert result.returncode != 0 and named in result.stderr
    assert manage({**env, **{k: v for k, v in production_env().items() if k in unsafe}}, "check").returncode == 0


@pytest.fixture(scope="module")
def production_web(stack_env, tmp_path_factory):
    from django.conf import settings

    # The test's own key for secrets at rest, so this process reads the apps the test stores.
    env = production_env(FIELD_ENCRYPTION_KEY=settings.FIELD_ENCRYPTION_KEY, DATABASE_URL=stack_env["DATABASE_URL"],
                         REDIS_URL=stack_env["REDIS_URL"], REDIS_NAMESPACE=stack_env["REDIS_NAMESPACE"],
                         DATA_DIR=stack_env["DATA_DIR"], ALLOWED_HOSTS="rtms.example.com,127.0.0.1")
    env.pop("DEBUG")
    web = processes.start_daphne(env, tmp_path_factory.mktemp("production-web"))
    yield web
    web.stop()


@pytest.mark.django_db(transaction=True)
def test_a_web_process_with_no_debug_variable_answers_as_production(production_web):
    plain = requests.get(f"{production_web.url}/console/signin", allow_redirects=False, timeout=10)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")

    # Load balancers probe over plain http: answered, not redirected.
    assert requests.get(f"{production_web.url}/healthz", timeout=15).status_code in (200, 503)

    # Through the TLS proxy (which sets X-Forwarded-Proto): the page, one HSTS value, https-only session cookie.
    proxied = {"X-Forwarded-Proto": "https"}
    page = requests.get(f"{production_web.url}/console/signin", headers=proxied, timeout=10)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    app = make_app("Notetaker")
    sign_in = requests.get(f"{production_web.url}/console/signin/{app.client_id}", headers=proxied,
                           allow_redirects=False, timeout=10)
    assert sign_in.status_code == 302
    session_cookie = next(c for c in sign_in.cookies if c.name == "sessionid")
    assert session_cookie.secure and session_cookie.has_nonstandard_attr("HttpOnly")
    # A page Zoom renders (the install callback) sends the very same value.
    zoom_page = requests.get(f"{production_web.url}/zoom/oauth/callback/{app.client_id}", headers=proxied, timeout=10)
    assert zoom_page.headers["Strict-Transport-Security"] == page.headers["Strict-Transport-Security"]

    missing = requests.get(f"{production_web.url}/no-such-page", headers=proxied, timeout=10)
    assert missing.status_code == 404
    assert "URLconf" not in missing.text and "DEBUG = True" not in missing.text  # no debug page


def test_the_web_process_freezes_what_it_loaded_so_garbage_collections_skip_it():
    """Full collections that walk the loaded app pause every socket and request (docs/PERFORMANCE.md "Garbage
    collection in the web process")."""
    result = subprocess.run([sys.executable, "-c", "import gc, zoomapp.asgi; print(gc.get_freeze_count())"],
                            cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 50_000  # Django and the app: ~120,000 objects
