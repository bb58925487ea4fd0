"""The environment a benchmark's own web and worker processes run in: as deployed (DEBUG off, real keys), on a
database and Redis namespace of its own, with the simulator's ws://127.0.0.1 allowed as an RTMS host."""

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

PG = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
ROOT = Path(__file__).resolve().parent.parent


def set_up(name):
    """Set this process's environment for the bench `name`; returns (redis namespace, database name)."""
    run, db_name = f"bench{os.getpid()}", f"bench_{name}_{os.getpid()}"
    os.environ.update({
        "DATABASE_URL": f"{PG}/{db_name}", "REDIS_NAMESPACE": run, "LOG_LEVEL": "WARNING",
        # As deployed: DEBUG off (Django's debug cursor would keep and format every query), so real keys.
        "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(32), "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "DATA_DIR": tempfile.mkdtemp(prefix=f"bench-{name}-"), "DJANGO_SETTINGS_MODULE": "zoomapp.settings",
        # The simulator's RTMS servers are ws://127.0.0.1: outside production's outbound allow list.
        "RTMS_ALLOWED_HOSTS": "127.0.0.1", "RTMS_ALLOW_INSECURE_WS": "true",
        # Plain http on 127.0.0.1 (production redirects http to https and sends cookies over https only).
        "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
        "SITE_URL": "http://127.0.0.1:8000", "ZOOM_ALLOW_INSECURE_HTTP": "true",  # the simulator is http
    })
    return run, db_name


@contextlib.contextmanager
def own_database(name):
    """This process set up as `set_up(name)` does, on a migrated database of its own with Django set up; the
    database is dropped at the end. For benches that run the product's code in their own process."""
    import psycopg

    _, db_name = set_up(name)
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db_name}")
    try:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], cwd=ROOT, check=True)
        import django

        django.setup()
        yield
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")


def register_bench_app(sim, web_url, site_url):
    """The bench's app, saved here and registered with the simulator the one way the tests do it."""
    from tests.zoomsim_client import register_app
    from zoomapp.marketplace.models import ZoomApp

    app = ZoomApp.objects.create(name="Bench Bot", client_id=f"bench{secrets.token_hex(4)}",
                                 client_secret=secrets.token_hex(16), webhook_secret_token=secrets.token_hex(16))
    register_app(sim, name=app.name, client_id=app.client_id, client_secret=app.client_secret,
                 webhook_secret_token=app.webhook_secret_token, event_url=web_url + app.webhook_path,
                 home_url=f"{web_url}/panel/{app.client_id}/", account_id="acctBench",
                 redirect_url=f"{site_url}/zoom/oauth/callback/{app.client_id}")
    return app
