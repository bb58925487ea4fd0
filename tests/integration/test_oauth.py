"""OAuth against the simulator's OAuth server (docs/ZOOM.md §8): Marketplace install with and without our state,
in-client PKCE, encrypted tokens, refresh with rotation, and re-authorization when a refresh is refused."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection

from tests.consent_support import add_sim_user, make_app, meeting_uuid, register_with_sim
from zoomapp.marketplace import oauth
from zoomapp.marketplace.models import UserAuthorization

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sim_app(daphne, zoomsim, settings):
    settings.ZOOM_OAUTH_URL = zoomsim.http_url
    settings.ZOOM_API_URL = f"{zoomsim.http_url}/v2"
    app = make_app()
    register_with_sim(zoomsim, daphne.url, app)
    return app


def zoom_consents(zoomsim, authorize_url, user_id):
    """The user presses Allow on Zoom's page: Zoom redirects to our callback with code (and state)."""
    response = requests.get(authorize_url, params={"user_id": user_id}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)


def test_install_with_our_state_stores_encrypted_tokens(daphne, zoomsim, sim_app):
    add_sim_user(zoomsim, "instA", "Ines", group_id="g7")
    start = requests.get(f"{daphne.url}/zoom/install/{sim_app.client_id}", allow_redirects=False, timeout=10)
    assert start.status_code == 302 and "state=" in start.headers["Location"]
    query = zoom_consents(zoomsim, start.headers["Location"], "instA")
    page = requests.get(f"{daphne.url}/zoom/oauth/callback/{sim_app.client_id}",
                        params={"code": query["code"][0], "state": query["state"][0]}, timeout=10)
    assert page.status_code == 200, page.text
    assert "is installed for Ines" in page.text
    assert "Content-Security-Policy" in page.headers
    grant = UserAuthorization.objects.get(app=sim_app, user_id="instA")
    assert grant.access_token and grant.group_ids == ["g7"] and grant.account_id == "acct1"
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM marketplace_userauthorization WHERE id = %s",
                       [grant.pk])
        stored = cursor.fetchone()
    assert grant.access_token not in stored[0] and grant.refresh_token not in stored[1]


def test_marketplace_add_without_state_is_accepted(daphne, zoomsim, sim_app):
    add_sim_user(zoomsim, "instB", "Bo")
    query = zoom_consents(zoomsim, oauth.authorize_url(sim_app), "instB")  # Zoom's "Add": no state of ours
    assert "state" not in query
    page = requests.get(f"{daphne.url}/zoom/oauth/callback/{sim_app.client_id}",
                        params={"code": query["code"][0]}, timeout=10)
    assert page.status_code == 200 and "is installed for Bo" in page.text


def test_forged_state_is_refused_and_nothing_is_stored(daphne, zoomsim, sim_app):
    add_sim_user(zoomsim, "instC", "Cy")
    query = zoom_consents(zoomsim, oauth.authorize_url(sim_app, state="forged"), "instC")
    page = requests.get(f"{daphne.url}/zoom/oauth/callback/{sim_app.client_id}",
                        params={"code": query["code"][0], "state": "forged"}, timeout=10)
    assert page.status_code == 400 and "not valid or has expired" in page.text
    assert not UserAuthorization.objects.filter(app=sim_app, user_id="instC").exists()


def test_in_client_pkce_authorization(client, daphne, zoomsim, sim_app):
    from tests.consent_support import open_panel

    add_sim_user(zoomsim, "pkceHost", "Pia")
    token, _ = open_panel(client, sim_app, meeting_uuid(), "pkceHost", "host")
    started = client.post(f"/panel/{sim_app.client_id}/api/authorize", data={}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {token}").json()
    # Zoom's client runs authorize({codeChallenge, state}) and answers onAuthorized with a code.
    query = zoom_consents(zoomsim, oauth.authorize_url(sim_app, state=started["state"],
                                                       code_challenge=started["codeChallenge"]), "pkceHost")
    body = {"code": query["code"][0], "state": started["state"], "redirectUri": oauth.redirect_uri(sim_app)}
    finished = client.post(f"/panel/{sim_app.client_id}/api/authorized", data=body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    assert finished.status_code == 200, finished.content
    assert finished.json()["authorization"] == "authorized"
    # The state is single use: replaying the same answer is refused.
    again = client.post(f"/panel/{sim_app.client_id}/api/authorized", data=body, content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {token}")
    assert again.status_code == 400 and "not started here" in again.json()["message"]


def test_pkce_code_from_another_verifier_is_refused(client, daphne, zoomsim, sim_app):
    from tests.consent_support import open_panel

    add_sim_user(zoomsim, "pkceEve", "Eve")
    token, _ = open_panel(client, sim_app, meeting_uuid(), "pkceEve", "host")
    started = client.post(f"/panel/{sim_app.client_id}/api/authorize", data={}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {token}").json()
    query = zoom_consents(zoomsim, oauth.authorize_url(sim_app, state=started["state"],
                                                       code_challenge="x" * 43), "pkceEve")
    finished = client.post(f"/panel/{sim_app.client_id}/api/authorized",
                           data={"code": query["code"][0], "state": started["state"],
                                 "redirectUri": oauth.redirect_uri(sim_app)},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert finished.status_code == 400 and "code_verifier" in finished.json()["message"]
    assert not UserAuthorization.objects.filter(app=sim_app, user_id="pkceEve").exists()


def _installed(zoomsim, app, user_id):
    add_sim_user(zoomsim, user_id, user_id)
    query = zoom_consents(zoomsim, oauth.authorize_url(app), user_id)
    return oauth.complete_authorization(app, query["code"][0])


def test_refresh_before_expiry_rotates_the_refresh_token(zoomsim, sim_app):
    from datetime import timedelta

    from django.utils import timezone

    grant = _installed(zoomsim, sim_app, "refreshR")
    assert oauth.access_token_for(sim_app, "refreshR") == grant.access_token  # fresh: no refresh
    UserAuthorization.objects.filter(pk=grant.pk).update(expires_at=timezone.now() + timedelta(minutes=2))
    new_token = oauth.access_token_for(sim_app, "refreshR")
    renewed = UserAuthorization.objects.get(pk=grant.pk)
    assert new_token != grant.access_token and renewed.refresh_token != grant.refresh_token
    assert renewed.expires_at > timezone.now() + timedelta(minutes=30)
    # Zoom rotated it: the old refresh token is dead.
    old = requests.post(f"{zoomsim.http_url}/oauth/token", data={"grant_type": "refresh_token",
                        "refresh_token": grant.refresh_token}, auth=(sim_app.client_id, sim_app.client_secret),
                        timeout=10)
    assert old.status_code == 400
    me = requests.get(f"{zoomsim.http_url}/v2/users/me", headers={"Authorization": f"Bearer {new_token}"}, timeout=10)
    assert me.status_code == 200 and me.json()["id"] == "refreshR"


def test_refused_refresh_asks_for_reauthorization(zoomsim, sim_app):
    grant = _installed(zoomsim, sim_app, "refreshX")
    UserAuthorization.objects.filter(pk=grant.pk).update(refresh_token="dead-token")
    with pytest.raises(oauth.ReauthorizationRequired):
        oauth.access_token_for(sim_app, "refreshX", force_refresh=True)
    assert UserAuthorization.objects.get(pk=grant.pk).needs_reauthorization
    assert oauth.authorization_status(sim_app.pk, "refreshX") == "reauthorize"
    # Authorizing again clears it.
    _installed(zoomsim, sim_app, "refreshX")
    assert oauth.authorization_status(sim_app.pk, "refreshX") == "authorized"


def _zoom_fails_the_next_refresh(zoomsim, app, **answer):
    response = zoomsim.post("/_sim/faults", json={"kind": "oauth_error", "client_id": app.client_id,
                                                  "grant_type": "refresh_token", **answer})
    assert response.status_code == 201, response.text


def _expired(grant):
    from django.utils import timezone

    UserAuthorization.objects.filter(pk=grant.pk).update(expires_at=timezone.now())


def _works_at_zoom(zoomsim, access_token):
    me = requests.get(f"{zoomsim.http_url}/v2/users/me", headers={"Authorization": f"Bearer {access_token}"},
                      timeout=10)
    return me.status_code == 200


@pytest.mark.parametrize("answer", [
    {"status": 503},  # the page of a proxy in front of Zoom
    {"status": 502},
    {"status": 500, "error": "server_error", "reason": "Internal error"},
    {"status": 429, "error": "rate_limited", "reason": "Too many requests", "retry_after": 1},
])
def test_a_refresh_zoom_fails_to_answer_leaves_the_grant_usable(zoomsim, sim_app, answer):
    grant = _installed(zoomsim, sim_app, "refreshU")
    _expired(grant)
    _zoom_fails_the_next_refresh(zoomsim, sim_app, **answer)
    with pytest.raises(oauth.ZoomUnavailable):
        oauth.access_token_for(sim_app, "refreshU")
    assert not UserAuthorization.objects.get(pk=grant.pk).needs_reauthorization
    assert oauth.authorization_status(sim_app.pk, "refreshU") == "authorized"
    # Zoom spent nothing: the next call refreshes with the same refresh token.
    renewed = oauth.access_token_for(sim_app, "refreshU")
    assert renewed != grant.access_token and _works_at_zoom(zoomsim, renewed)


def test_a_token_not_yet_expired_is_used_while_zoom_cannot_refresh_it(zoomsim, sim_app):
    from datetime import timedelta

    from django.utils import timezone

    grant = _installed(zoomsim, sim_app, "refreshV")
    UserAuthorization.objects.filter(pk=grant.pk).update(expires_at=timezone.now() + timedelta(minutes=2))
    _zoom_fails_the_next_refresh(zoomsim, sim_app, status=503)
    token = oauth.access_token_for(sim_app, "refreshV")
    assert token == grant.access_token and _works_at_zoom(zoomsim, token)
    assert oauth.authorization_status(sim_app.pk, "refreshV") == "authorized"


@pytest.mark.parametrize("answer", [
    {"status": 400, "error": "invalid_grant", "reason": "Invalid Token!"},
    {"status": 400, "error": "invalid_request", "reason": "Invalid Token!"},  # as the forum reports it too
])
def test_a_refresh_zoom_refuses_as_a_dead_grant_asks_for_reauthorization(zoomsim, sim_app, answer):
    grant = _installed(zoomsim, sim_app, "refreshW")
    _expired(grant)
    _zoom_fails_the_next_refresh(zoomsim, sim_app, **answer)
    with pytest.raises(oauth.ReauthorizationRequired):
        oauth.access_token_for(sim_app, "refreshW")
    assert UserAuthorization.objects.get(pk=grant.pk).needs_reauthorization
    assert oauth.authorization_status(sim_app.pk, "refreshW") == "reauthorize"


def test_a_refresh_refused_for_our_apps_secret_leaves_the_users_grant_alone(zoomsim, sim_app):
    """A wrong client secret (rotated in the Marketplace, not yet here) is Zoom's 401 invalid_client: no user's
    re-authorization fixes it, so no grant is marked; once the secret is right the grant refreshes."""
    grant = _installed(zoomsim, sim_app, "refreshS")
    _expired(grant)
    secret = sim_app.client_secret
    sim_app.client_secret = "not-the-secret"
    sim_app.save()
    with pytest.raises(oauth.OAuthError, match="Invalid client_id or client_secret") as failed:
        oauth.access_token_for(sim_app, "refreshS")
    assert not isinstance(failed.value, oauth.ReauthorizationRequired)
    assert oauth.authorization_status(sim_app.pk, "refreshS") == "authorized"
    sim_app.client_secret = secret
    sim_app.save()
    assert _works_at_zoom(zoomsim, oauth.access_token_for(sim_app, "refreshS"))


def test_a_reauthorization_that_waited_for_a_refused_refresh_stays_authorized(zoomsim, sim_app):
    """The refresh Zoom refuses flags the grant under its row's lock: a re-authorization waiting for that lock
    saves after it, and the grant it saves is not flagged by the refresh that came first."""
    import threading

    from django.utils import timezone

    from tests.locks_support import blocked_on_a_lock, held_elsewhere
    from tests.processes import wait_for

    grant = _installed(zoomsim, sim_app, "refreshZ")
    UserAuthorization.objects.filter(pk=grant.pk).update(refresh_token="dead-token", expires_at=timezone.now())
    add_sim_user(zoomsim, "refreshZ", "refreshZ")
    code = zoom_consents(zoomsim, oauth.authorize_url(sim_app), "refreshZ")["code"][0]

    def in_a_thread(work):
        def run():
            try:
                work()
            except oauth.ReauthorizationRequired:
                pass
            finally:
                connection.close()
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    # Both wait for the grant's row, the refresh first; then the row is let go.
    with held_elsewhere(lambda: UserAuthorization.objects.select_for_update().get(pk=grant.pk)):
        refreshing = in_a_thread(lambda: oauth.access_token_for(sim_app, "refreshZ"))
        wait_for(blocked_on_a_lock, 10, "the refresh to wait for the grant")
        reauthorizing = in_a_thread(lambda: oauth.complete_authorization(sim_app, code))
        wait_for(lambda: blocked_on_a_lock(2), 10, "the re-authorization to wait for the grant")
    refreshing.join(10)
    reauthorizing.join(10)
    assert oauth.authorization_status(sim_app.pk, "refreshZ") == "authorized"


def test_a_panel_of_an_app_removed_meanwhile_is_refused_with_404(client):
    """The panel's token outlives its app (an admin removed it while panels were open): a clear 404 from its actions
    and its authorization, not a 500 (its socket's refusal: tests/integration/test_panel_socket.py)."""
    from tests.consent_support import open_panel, panel_action

    app = make_app()
    token, _ = open_panel(client, app, meeting_uuid(), "goneHost", "host")
    app.delete()
    acted = panel_action(client, app, token, action="request")
    assert acted.status_code == 404 and acted.json()["error"] == "unknown_meeting"
    for path, body in (("authorize", {}), ("authorized", {"code": "c", "state": "s", "redirectUri": "https://x/"})):
        answer = client.post(f"/panel/{app.client_id}/api/{path}", data=body, content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {token}")
        assert answer.status_code == 404, (path, answer.status_code)
    assert not UserAuthorization.objects.filter(user_id="goneHost").exists()
