"""A console session holds only while Zoom still says its admin is one, against daphne and the simulator's Zoom.

The grant the admin signed in with is checked on every request and socket push (removing the app ends the session
at once); Zoom is asked for the role again once the last confirmation is CONSOLE_ROLE_RECHECK_SECONDS old and
before every change or download (a demoted admin keeps nothing); Zoom unreachable keeps reads and refuses changes;
a session ends after CONSOLE_IDLE_SECONDS without a page request, and CONSOLE_SESSION_SECONDS after sign-in.
Time passing is the session's recorded times moved back, as a clock would move them.
"""

import html
import json
import secrets
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.consent_support import add_sim_user
from tests.console_support import post_form, sign_in
from tests.locks_support import blocked_on_a_lock, held_elsewhere
from tests.processes import wait_for
from zoomapp.consent.models import SharingPolicy
from zoomapp.console import auth
from zoomapp.marketplace.models import UserAuthorization

pytestmark = pytest.mark.django_db(transaction=True)

DEMOTED = "The admin console is for account owners and admins. Zoom says your role is Member."


@pytest.fixture
def owner(zoomsim):
    user_id = f"olive{secrets.token_hex(3)}"
    add_sim_user(zoomsim, user_id, "Olive Owner", account_id="acctA", role="owner")
    return user_id


@pytest.fixture
def zoom_faults(zoomsim):
    yield zoomsim
    zoomsim.delete("/_sim/faults")


def signed_in(daphne, app, user_id):
    session, response = sign_in(daphne.url, app.client_id, user_id)
    assert response.status_code == 302, response.text
    return session


def move_back(browser, **seconds):
    """The session's recorded times (signed_in, last_seen, role_confirmed) moved `seconds` into the past."""
    stored = SessionStore(session_key=browser.cookies["sessionid"])
    times = stored[auth.TIMES_KEY]
    stored[auth.TIMES_KEY] = {name: value - seconds.get(name, 0) for name, value in times.items()}
    stored.save()


def turn_sharing_off(daphne, browser):
    return post_form(browser, f"{daphne.url}/console/sharing", {"level": "account", "value": "off"})


def page(daphne, browser, path="sharing"):
    return browser.get(f"{daphne.url}/console/{path}", allow_redirects=False, timeout=10)


def sent_to_sign_in_saying(daphne, browser, reason):
    """The console page redirects to the sign-in page, which says why; the session is gone."""
    response = page(daphne, browser)
    assert response.status_code == 302 and response.headers["Location"] == "/console/signin"
    sign_in_page = browser.get(f"{daphne.url}/console/signin", timeout=10)
    assert reason in html.unescape(sign_in_page.text)
    assert page(daphne, browser).headers["Location"] == "/console/signin"


def streams_socket(daphne, browser):
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    return connect(daphne.url.replace("http://", "ws://") + "/ws/console/streams",
                   additional_headers={"Cookie": cookie, "Origin": daphne.url}, open_timeout=10)


def closed_with(ws):
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(5):  # pushes already on their way may still arrive; then it must close
            ws.recv(timeout=10)
    return closed.value.rcvd.code


def test_an_admin_who_removed_the_app_is_signed_out_everywhere_at_once(daphne, zoomsim, console_app, owner):
    """What the auditor did: the grant deleted (Zoom's app_deauthorized), the console still answered and saved."""
    reading, changing, watching = (signed_in(daphne, console_app, owner) for _ in range(3))
    with streams_socket(daphne, watching) as ws:
        assert json.loads(ws.recv(timeout=10))["version"] == 1
        zoomsim.post(f"/_sim/apps/{console_app.client_id}/deauthorize", json={"user_id": owner})
        wait_for(lambda: not UserAuthorization.objects.filter(user_id=owner).exists(), 10, "the grant to go")
        assert closed_with(ws) == 4403

    refused = turn_sharing_off(daphne, changing)
    assert refused.status_code == 403 and auth.GRANT_GONE in html.unescape(refused.text)
    assert not SharingPolicy.objects.exists()
    sent_to_sign_in_saying(daphne, reading, auth.GRANT_GONE)


def test_a_demoted_admin_is_refused_the_next_change_or_download_and_signed_out(daphne, zoomsim, console_app, owner):
    changing, downloading = signed_in(daphne, console_app, owner), signed_in(daphne, console_app, owner)
    add_sim_user(zoomsim, owner, "Olive Owner", account_id="acctA", role="member")

    refused = turn_sharing_off(daphne, changing)
    assert refused.status_code == 403 and DEMOTED in html.unescape(refused.text)
    assert not SharingPolicy.objects.exists()
    assert page(daphne, changing).headers["Location"] == "/console/signin"

    download = downloading.get(f"{daphne.url}/console/streams/{'a' * 32}/media/1", allow_redirects=False, timeout=10)
    assert download.status_code == 302 and download.headers["Location"] == "/console/signin"  # not a 404 first
    assert DEMOTED in html.unescape(downloading.get(f"{daphne.url}/console/signin", timeout=10).text)


def test_a_demoted_admins_pages_and_socket_end_once_the_role_is_due_to_be_confirmed(
        daphne, zoomsim, console_app, owner):
    browser = signed_in(daphne, console_app, owner)
    with streams_socket(daphne, browser) as ws:
        assert json.loads(ws.recv(timeout=10))["version"] == 1
        add_sim_user(zoomsim, owner, "Olive Owner", account_id="acctA", role="member")
        assert page(daphne, browser).status_code == 200  # confirmed at sign-in, under a recheck ago
        move_back(browser, role_confirmed=settings.CONSOLE_ROLE_RECHECK_SECONDS + 1)
        assert closed_with(ws) == 4403
    sent_to_sign_in_saying(daphne, browser, DEMOTED)


def test_an_owner_zoom_made_an_admin_stays_signed_in_as_admin(daphne, zoomsim, console_app, owner):
    browser = signed_in(daphne, console_app, owner)
    add_sim_user(zoomsim, owner, "Olive Owner", account_id="acctA", role="admin")
    assert turn_sharing_off(daphne, browser).status_code == 302
    assert "Olive Owner · Admin · account" in page(daphne, browser).text
    assert SharingPolicy.objects.get(account_id="acctA").share_with_apps is False


def test_zoom_unreachable_keeps_reading_and_refuses_changes_until_it_answers(
        daphne, zoom_faults, console_app, owner):
    browser = signed_in(daphne, console_app, owner)
    zoom_faults.post("/_sim/faults", json={"kind": "rest_error", "method": "GET", "path_contains": "/users/me",
                                           "status": 503, "count": 10})
    move_back(browser, role_confirmed=settings.CONSOLE_ROLE_RECHECK_SECONDS + 1)

    assert page(daphne, browser).status_code == 200
    wait_for(lambda: "console role not confirmed again, Zoom unavailable" in daphne.log_text(), 5, "the log line")
    refused = turn_sharing_off(daphne, browser)
    assert refused.status_code == 503 and auth.ROLE_UNCONFIRMED in html.unescape(refused.text)
    assert not SharingPolicy.objects.exists()

    zoom_faults.delete("/_sim/faults")
    assert turn_sharing_off(daphne, browser).status_code == 302
    assert SharingPolicy.objects.get(account_id="acctA").share_with_apps is False


def test_a_session_ends_when_idle_and_at_most_hours_after_sign_in(daphne, console_app, owner):
    active, idle, old = (signed_in(daphne, console_app, owner) for _ in range(3))

    move_back(active, last_seen=settings.CONSOLE_IDLE_SECONDS - 60)
    assert page(daphne, active).status_code == 200
    move_back(active, last_seen=120)  # the request above was activity: the idle time counts from it
    assert page(daphne, active).status_code == 200

    move_back(idle, last_seen=settings.CONSOLE_IDLE_SECONDS + 1)
    sent_to_sign_in_saying(daphne, idle, "You were signed out after 30 minutes without activity.")

    move_back(old, signed_in=settings.CONSOLE_SESSION_SECONDS + 1)
    sent_to_sign_in_saying(daphne, old, "Your console session ended: sessions last 8 hours.")


def users_me_faults_left(zoom_faults):
    return sum(fault["count"] for fault in zoom_faults.get("/_sim/faults").json()
               if fault.get("path_contains") == "/users/me")


def test_zoom_unreachable_is_asked_again_a_minute_later_not_on_every_push(daphne, zoom_faults, console_app, owner):
    """The socket pushes every 2 s; while Zoom cannot say the role, each push waiting on Zoom's timeout again would
    hold the socket (and Zoom's rate limit) for nothing: it reads on, and Zoom is asked after ROLE_RETRY_SECONDS."""
    browser = signed_in(daphne, console_app, owner)
    zoom_faults.post("/_sim/faults", json={"kind": "rest_error", "method": "GET", "path_contains": "/users/me",
                                           "status": 503, "count": 50})
    move_back(browser, role_confirmed=settings.CONSOLE_ROLE_RECHECK_SECONDS + 1)
    with streams_socket(daphne, browser) as ws:
        assert json.loads(ws.recv(timeout=20))["version"] == 1
        asked = 50 - users_me_faults_left(zoom_faults)
        assert asked >= 1
        for version in (2, 3, 4):  # 6 s of pushes, the table still sent
            assert json.loads(ws.recv(timeout=10))["version"] == version
        assert page(daphne, browser).status_code == 200
        assert 50 - users_me_faults_left(zoom_faults) == asked

        move_back(browser, role_unanswered=auth.ROLE_RETRY_SECONDS + 1)  # a minute later
        wait_for(lambda: 50 - users_me_faults_left(zoom_faults) > asked, 10, "Zoom to be asked again")


def test_a_slow_role_check_holds_no_other_admins_socket(daphne, zoomsim, console_app, owner):
    """Zoom's answer can take its timeout (here: the role check's token refresh waits for the grant's row, which
    another transaction holds). Meanwhile every other socket of the process pushes on: the role check is not run on
    the one thread all sockets' database calls share."""
    other = f"bert{secrets.token_hex(3)}"
    add_sim_user(zoomsim, other, "Bert Admin", account_id="acctB", role="admin")
    olive, bert = signed_in(daphne, console_app, owner), signed_in(daphne, console_app, other)
    with streams_socket(daphne, olive) as olive_ws, streams_socket(daphne, bert) as bert_ws:
        assert json.loads(olive_ws.recv(timeout=10))["version"] == 1
        assert json.loads(bert_ws.recv(timeout=10))["version"] == 1
        grant = UserAuthorization.objects.filter(app__client_id=console_app.client_id, user_id=owner)
        grant.update(expires_at=timezone.now() - timedelta(minutes=1))
        with held_elsewhere(lambda: list(grant.select_for_update())):
            move_back(olive, role_confirmed=settings.CONSOLE_ROLE_RECHECK_SECONDS + 1)
            wait_for(blocked_on_a_lock, 10, "Olive's role check to wait for her grant")
            versions = [json.loads(bert_ws.recv(timeout=5))["version"] for _ in range(2)]
            assert versions[1] == versions[0] + 1
        # Her check goes on once the row is free: the token refreshed, Zoom says she is an owner.
        latest = 0
        while latest < 3:
            latest = json.loads(olive_ws.recv(timeout=10))["version"]
    assert grant.get().expires_at > timezone.now()
