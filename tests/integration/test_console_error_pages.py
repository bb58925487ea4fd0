"""Error pages as production shows them (DEBUG off): the reason and the next step in the console's look, without
inline script, and JSON where the caller reads JSON (the panel's API, Zoom's webhooks).

404 and the CSRF refusal against a daphne started without DEBUG, signed in through the simulator's Zoom OAuth;
500 through Django's own handling in this process, of a view that fails on purpose (nothing in the product fails
on demand).
"""

import html
import secrets

import pytest
import requests
from django.conf import settings
from django.test import Client, override_settings
from django.urls import path

from tests import processes
from tests.consent_support import add_sim_user, make_app, register_with_sim
from tests.console_support import post_form, sign_in
from zoomapp import texts
from zoomapp.consent.models import SharingPolicy
from zoomapp.urls import handler404, handler500  # noqa: F401 (this module is the 500 test's URLconf)
from zoomapp.urls import urlpatterns as site_urlpatterns
from zoomapp.views import errors

pytestmark = pytest.mark.django_db(transaction=True)


def fails_on_purpose(request, **kwargs):
    raise RuntimeError("a detail for the log only: /srv/app/secret.py line 12")


urlpatterns = [*site_urlpatterns, path("console/fails", fails_on_purpose),
               path("panel/<str:client_id>/api/fails", fails_on_purpose)]


@pytest.fixture(scope="module")
def production_web(stack_env, tmp_path_factory):
    """Daphne with DEBUG off, plain http (no TLS proxy in the test), reading the apps the test stores."""
    env = {**stack_env, "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50),
           "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY, "SITE_URL": settings.SITE_URL,
           "ZOOM_ALLOW_INSECURE_HTTP": "true", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
           "SECURE_SSL_REDIRECT": "false"}
    web = processes.start_daphne(env, tmp_path_factory.mktemp("production-web"), name="daphne-no-debug")
    yield web
    web.stop()


@pytest.fixture
def owner_browser(production_web, zoomsim):
    app = make_app("Notetaker")
    register_with_sim(zoomsim, production_web.url, app)
    user_id = f"olive{secrets.token_hex(3)}"
    add_sim_user(zoomsim, user_id, "Olive Owner", account_id="acctA", role="owner")
    browser, response = sign_in(production_web.url, app.client_id, user_id)
    assert response.status_code == 302, response.text
    return app, browser


def page_text(response):
    return html.unescape(response.text)


def assert_console_error_page(response, status, message):
    assert response.status_code == status
    assert message in page_text(response)
    assert 'href="/console/"' in response.text and "Admin console" in response.text
    assert "<script" not in response.text and "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_consoles_own_not_found_messages_reach_the_admin_with_a_way_back(production_web, owner_browser):
    app, browser = owner_browser
    deleted = post_form(browser, f"{production_web.url}/console/meetings/delete-data",
                        {"meeting_uuid": "noSuchMeeting==", "client_id": app.client_id, "confirm": "yes"})
    assert_console_error_page(deleted, 404, "No such meeting in your account.")
    media = browser.get(f"{production_web.url}/console/streams/{'b' * 32}/media", timeout=10)
    assert_console_error_page(media, 404, "No such stream in your account's meetings.")


def test_djangos_own_not_found_messages_never_show(production_web):
    """The URL resolver's and get_object_or_404's messages name paths and models: a plain sentence instead."""
    for missing in ("/console/no-such-page-x7", "/zoom/install/noSuchClientId"):
        response = requests.get(f"{production_web.url}{missing}", timeout=10)
        assert_console_error_page(response, 404, errors.NOT_FOUND)
        assert "no-such-page-x7" not in response.text and "ZoomApp" not in response.text


def test_the_panel_api_and_webhooks_answer_not_found_in_json(production_web):
    panel = requests.post(f"{production_web.url}/panel/noSuchClientId/api/context", json={}, timeout=10)
    assert panel.status_code == 404
    assert panel.json() == {"error": "not_found", "message": texts.REFUSED_UNKNOWN_APP}
    no_app = requests.post(f"{production_web.url}/zoom/webhooks/noSuchClientId", json={}, timeout=10)
    assert no_app.status_code == 404 and no_app.json()["error"] == "unknown_app"  # the webhook's own refusal
    no_route = requests.get(f"{production_web.url}/zoom/webhooks/", timeout=10)
    assert no_route.status_code == 404 and no_route.json() == {"error": "not_found", "message": errors.NOT_FOUND}


def test_a_form_whose_csrf_token_expired_says_to_reload_and_saves_nothing(production_web, owner_browser):
    _, browser = owner_browser
    refused = browser.post(f"{production_web.url}/console/sharing",
                           data={"level": "account", "value": "off", "csrfmiddlewaretoken": "expired" * 8},
                           allow_redirects=False, timeout=10)
    assert_console_error_page(refused, 403, "Your session's form expired: reload the page and try again.")
    assert not SharingPolicy.objects.exists()
    assert post_form(browser, f"{production_web.url}/console/sharing",
                     {"level": "account", "value": "off"}).status_code == 302  # reloaded: the form is accepted


@override_settings(DEBUG=False, ROOT_URLCONF=__name__)
def test_a_server_error_apologises_says_what_to_do_and_keeps_its_details_in_the_log():
    client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    page = client.get("/console/fails")
    assert page.status_code == 500
    text = html.unescape(page.content.decode())
    assert errors.SERVER_ERROR in text and 'href="/console/"' in text
    assert "secret.py" not in text and "RuntimeError" not in text and "<script" not in text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]

    panel = client.get("/panel/anyApp/api/fails")
    assert panel.status_code == 500
    assert panel.json() == {"error": "server_error", "message": errors.SERVER_ERROR}
