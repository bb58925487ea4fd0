"""The console's sharing and auto-start pages for an account of N users: queries and time per page.

    .venv/bin/python bench/console_users.py                    # N = 1000 and 3000
    .venv/bin/python bench/console_users.py --users 500 --runs 5

Each user has a grant in the account (a name, one of 20 groups); the account has a sharing and an auto-start row
at account level, one per group, and one for every tenth user, for each of two installed apps. Each page is
requested through Django's test client as a signed-in owner (the real view, middleware and template), `--runs`
times: the best time, the queries of one request, the page's size. To compare with older code, run this file
from the old checkout (`git worktree add /tmp/old <rev>`, or `git archive <rev>` unpacked), which ignores the
pages' search and paging. Needs PostgreSQL (BENCH_POSTGRES's server, 127.0.0.1:5432 by default; a scratch
database is created and dropped).
"""

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.deployed_env import own_database  # noqa: E402 - after sys.path

ACCOUNT, GROUPS = "acctBench", 20


def _account(n):
    from django.utils import timezone

    from zoomapp.consent.models import SharingPolicy
    from zoomapp.console.models import AutoStartSetting
    from zoomapp.marketplace.models import UserAuthorization, ZoomApp

    apps = [ZoomApp.objects.create(name=f"Bench {i}", client_id=f"benchConsole{i}", client_secret="s",
                                   webhook_secret_token="t") for i in range(2)]
    users = [f"user{i:05d}" for i in range(n)]
    expires = timezone.now() + timedelta(hours=1)
    UserAuthorization.objects.bulk_create([
        UserAuthorization(app=apps[i % 2], user_id=user, account_id=ACCOUNT, group_ids=[f"group{i % GROUPS}"],
                          role_name="Member", display_name=f"Person {i:05d}", access_token="a", refresh_token="r",
                          expires_at=expires) for i, user in enumerate(users)], batch_size=1000)
    targets = ([("account", ACCOUNT)] + [("group", f"group{g}") for g in range(GROUPS)]
               + [("user", user) for user in users[::10]])
    SharingPolicy.objects.bulk_create([SharingPolicy(account_id=ACCOUNT, level=level, target_id=target,
                                                     share_with_apps=i % 2 == 0)
                                       for i, (level, target) in enumerate(targets)])
    AutoStartSetting.objects.bulk_create([AutoStartSetting(account_id=ACCOUNT, level=level, target_id=target, app=app,
                                                           auto_start=i % 3 == 0)
                                          for app in apps for i, (level, target) in enumerate(targets)])
    return apps


def _signed_in_client(app):
    """A test client in the session auth.sign_in leaves an owner of the account who has a grant to `app`."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import Client, RequestFactory
    from django.utils import timezone

    from zoomapp.console import auth
    from zoomapp.marketplace.models import UserAuthorization

    UserAuthorization.objects.create(app=app, user_id="ownerBench", account_id=ACCOUNT, role_name="Owner",
                                     display_name="Olive", access_token="a", refresh_token="r",
                                     expires_at=timezone.now() + timedelta(hours=1))
    request = RequestFactory().get("/")
    request.session = SessionStore()
    auth.sign_in(request, auth.ConsoleAdmin("ownerBench", ACCOUNT, "Owner", "Olive", app.client_id))
    request.session.save()
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = request.session.session_key
    return client


def _measure(n, runs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from zoomapp.consent.models import SharingPolicy
    from zoomapp.console.models import AutoStartSetting
    from zoomapp.marketplace.models import UserAuthorization, ZoomApp

    apps = _account(n)
    client = _signed_in_client(apps[0])
    for page in ("/console/sharing", "/console/auto-start"):
        times = []
        for _ in range(runs):
            start = time.monotonic()
            response = client.get(page, secure=True)
            times.append(time.monotonic() - start)
            assert response.status_code == 200, response.status_code
        with CaptureQueriesContext(connection) as queries:
            client.get(page, secure=True)
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"console_users ({ROOT.name}): {n} users, {page}: best of {runs} {min(times) * 1000:.0f} ms "
              f"(worst {max(times) * 1000:.0f}), {len(queries)} queries, {len(response.content) // 1024} KiB; "
              f"load average {load}", flush=True)
    for model in (AutoStartSetting, SharingPolicy, UserAuthorization, ZoomApp):
        model.objects.all().delete()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="1000,3000", help="comma-separated account sizes")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with own_database("console_users"):
        for n in (int(value) for value in args.users.split(",")):
            _measure(n, args.runs)


if __name__ == "__main__":
    main()
