"""Helpers for the admin console tests: signing in through the simulator's Zoom OAuth, posting console forms.

The console sends the browser to Zoom's authorize page; the simulator consents for `user_id` and redirects to
our SITE_URL-based callback, which we replay against the test's daphne with the same cookies.
"""

from urllib.parse import urlsplit

import requests


def start_sign_in(session, web_url, client_id):
    response = session.get(f"{web_url}/console/signin/{client_id}", allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def zoom_callback_url(authorize_url, user_id, web_url):
    """Zoom's authorize page for `user_id`: the callback URL it redirects to, pointed at the test's daphne."""
    response = requests.get(authorize_url, params={"user_id": user_id}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    callback = urlsplit(response.headers["Location"])
    return f"{web_url}{callback.path}?{callback.query}"


def sign_in(web_url, client_id, user_id):
    """A requests session signed in as `user_id` (or refused); returns (session, callback response)."""
    session = requests.Session()
    authorize = start_sign_in(session, web_url, client_id)
    response = session.get(zoom_callback_url(authorize, user_id, web_url), allow_redirects=False, timeout=10)
    if response.status_code == 302:
        session.get(f"{web_url}{response.headers['Location']}", timeout=10)  # the first page sets the CSRF cookie
    return session, response


def install_app(web_url, client_id, user_id):
    """`user_id` installs the app through Zoom's OAuth (the Marketplace install): Zoom then tells us their account."""
    start = requests.get(f"{web_url}/zoom/install/{client_id}", allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    page = requests.get(zoom_callback_url(start.headers["Location"], user_id, web_url), timeout=10)
    assert page.status_code == 200 and "is installed for" in page.text, page.text


def post_form(session, url, data):
    """POST a console form the way the browser does: with the CSRF token from the page's cookie."""
    return session.post(url, data={**data, "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
                        allow_redirects=False, timeout=10)


def end_meeting_and_settle(zoomsim, meeting, timeout=20.0):
    """End a simulated meeting and wait until our side has recorded it all (meeting ended, every stream stopped,
    no share active, the audit log no longer growing), so the test's database flush never races those writes."""
    from rtms.models import StreamSession
    from tests.processes import streams_at_rest, wait_for
    from zoomapp.consent.models import AuditEntry, Meeting, Share

    zoomsim.post(f"/_sim/meetings/{meeting['id']}/end")
    uuid = meeting["uuid"]
    seen = {"entries": -1}

    def settled():
        ended = Meeting.objects.filter(uuid=uuid, ended_at__isnull=False).exists()
        streaming = not streams_at_rest(StreamSession.objects.filter(meeting_uuid=uuid))
        active = Share.objects.filter(meeting__uuid=uuid, status__in=Share.ACTIVE).exists()
        entries = AuditEntry.objects.filter(meeting_uuid=uuid).count()
        quiet, seen["entries"] = entries == seen["entries"], entries
        return ended and not streaming and not active and quiet

    wait_for(settled, timeout, f"meeting {uuid} to end and settle", interval=0.3)


def signed_in_session(app, user_id, account_id, role="Owner", name=""):
    """For tests that run the console in this process: `user_id`'s grant to `app` (the console checks it on every
    request) and a session signed in with it as the OAuth callback signs one in. Returns the saved SessionStore."""
    from datetime import timedelta
    from types import SimpleNamespace

    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from zoomapp.console import auth
    from zoomapp.marketplace.models import UserAuthorization

    UserAuthorization.objects.update_or_create(app=app, user_id=user_id, defaults={
        "account_id": account_id, "role_name": role, "display_name": name, "access_token": "a",
        "refresh_token": "r", "expires_at": timezone.now() + timedelta(hours=1)})
    session = SessionStore()
    auth.sign_in(SimpleNamespace(session=session), auth.ConsoleAdmin(user_id, account_id, role, name, app.client_id))
    session.save()
    return session
