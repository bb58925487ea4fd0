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


def post_form(session, url, data):
    """POST a console form the way the browser does: with the CSRF token from the page's cookie."""
    return session.post(url, data={**data, "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
                        allow_redirects=False, timeout=10)
