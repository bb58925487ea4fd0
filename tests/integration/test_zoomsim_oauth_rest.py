"""The simulator's OAuth server and REST API (docs/ZOOM.md §7, §8): authorization code with and without PKCE S256,
refresh-token rotation, Basic client auth, expiry, /v2/users/me, and rtms_app/status with Zoom's gating."""

import base64
import hashlib
import secrets
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.zoomsim_client import SimWorld, sim_world
from tests.zoomsim_process import run_zoomsim

REDIRECT = "http://127.0.0.1:9/oauth/callback"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with sim_world(tmp_path_factory.mktemp("zoomsim-oauth"), retry_scale=0.0005) as world:
        yield world


def _authorize(world, user_id, **params):
    query = {"response_type": "code", "client_id": world.client_id, "redirect_uri": REDIRECT, "user_id": user_id,
             **params}
    response = world.sim.get("/oauth/authorize", params=query, allow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def _token(world, auth=None, **form):
    return world.sim.post("/oauth/token", json=None, data=form,
                          auth=auth or (world.client_id, world.client_secret))


def _tokens_for(world, user_id):
    code = _authorize(world, user_id)["code"]
    response = _token(world, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert response.status_code == 200, response.text
    return response.json()


def _api(world, method, path, token, **kwargs):
    return world.sim.request(method, "/v2" + path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


@pytest.fixture
def user(world):
    return world.sim.post("/_sim/users", json={"name": "Olga Owner", "account_id": "acct-olga", "role": "owner",
                                               "email": "olga@example.test", "group_id": "grp-1"}).json()


def test_authorization_code_flow_and_users_me(world, user):
    params = _authorize(world, user["user_id"], state="xyz")
    assert params["state"] == "xyz"
    response = _token(world, grant_type="authorization_code", code=params["code"], redirect_uri=REDIRECT)
    tokens = response.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 3600
    assert tokens["access_token"] and tokens["refresh_token"]
    me = _api(world, "GET", "/users/me", tokens["access_token"]).json()
    assert me["id"] == user["user_id"] and me["account_id"] == "acct-olga"
    assert me["email"] == "olga@example.test" and me["role_name"] == "Owner" and me["group_ids"] == ["grp-1"]
    again = _token(world, grant_type="authorization_code", code=params["code"], redirect_uri=REDIRECT)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # codes are single-use


def test_marketplace_install_has_no_state(world, user):
    assert "state" not in _authorize(world, user["user_id"])


def test_pkce_s256(world, user):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    for attempt_verifier, status in ((verifier + "x", 400), (None, 400), (verifier, 200)):
        code = _authorize(world, user["user_id"], code_challenge=challenge, code_challenge_method="S256")["code"]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        if attempt_verifier:
            form["code_verifier"] = attempt_verifier
        assert _token(world, **form).status_code == status


def test_client_authentication(world, user):
    code = _authorize(world, user["user_id"])["code"]
    wrong = _token(world, auth=(world.client_id, "wrong"), grant_type="authorization_code", code=code)
    assert wrong.status_code == 401
    assert wrong.json() == {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}
    mismatch = _token(world, grant_type="authorization_code", code=_authorize(world, user["user_id"])["code"],
                      redirect_uri="http://127.0.0.1:9/elsewhere")
    assert mismatch.status_code == 400


def test_refresh_rotates(world, user):
    first = _tokens_for(world, user["user_id"])
    second = _token(world, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _api(world, "GET", "/users/me", second["access_token"]).status_code == 200
    reused = _token(world, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_access_token_expiry(tmp_path):
    with run_zoomsim(tmp_path, token_ttl=0.5) as sim:
        short = SimWorld(sim)
        try:
            owner = sim.post("/_sim/users", json={"name": "Tess", "role": "owner"}).json()
            tokens = _tokens_for(short, owner["user_id"])
            assert tokens["expires_in"] == 0.5
            assert _api(short, "GET", "/users/me", tokens["access_token"]).status_code == 200
            deadline = time.monotonic() + 5
            while _api(short, "GET", "/users/me", tokens["access_token"]).status_code == 200:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            expired = _api(short, "GET", "/users/me", tokens["access_token"])
            assert expired.status_code == 401 and expired.json() == {"code": 124,
                                                                     "message": "Access token is expired."}
        finally:
            short.close()


def test_authorize_page_asks_who_signs_in_when_ambiguous(world, user):
    response = requests.get(world.sim.http_url + "/oauth/authorize", allow_redirects=False, timeout=5,
                            params={"response_type": "code", "client_id": world.client_id, "redirect_uri": REDIRECT})
    assert response.status_code == 200 and "Olga Owner" in response.text
    cookie = requests.get(world.sim.http_url + "/oauth/authorize", allow_redirects=False, timeout=5,
                          cookies={"zoomsim_user": user["user_id"]},
                          params={"client_id": world.client_id, "redirect_uri": REDIRECT})
    assert cookie.status_code == 302


# -- PATCH /v2/live_meetings/{meetingId}/rtms_app/status --------------------------------------------------------

def _status(world, meeting, token, action="start", **settings):
    body = {"action": action, "settings": {"client_id": world.client_id, **settings}}
    return _api(world, "PATCH", f"/live_meetings/{meeting['id']}/rtms_app/status", token, json=body)


def test_host_starts_pauses_resumes_and_stops(world):
    meeting = world.meeting(participants=[{"name": "Ben"}])
    host_token = _tokens_for(world, meeting["host_user_id"])["access_token"]
    ben = meeting["participants"][1]
    response = _status(world, meeting, host_token, participant_user_id=ben["user_id"])
    assert response.status_code == 204 and response.content == b""
    started = world.hook.wait_for("meeting.rtms_started", lambda d: d["body"]["payload"]["meeting_uuid"] ==
                                  meeting["uuid"])["body"]["payload"]
    assert started["operator_id"] == ben["user_id"]
    assert _status(world, meeting, host_token, participant_user_id=ben["user_id"]).status_code == 204
    assert len(world.sim.get("/_sim/streams", params={"meeting": meeting["id"]}).json()) == 1  # idempotent
    assert _status(world, meeting, host_token, "pause").status_code == 204
    assert world.stream(started["rtms_stream_id"])["state"] == "paused"
    assert _status(world, meeting, host_token, "pause").json()["code"] == 2310
    assert _status(world, meeting, host_token, "resume").status_code == 204
    assert _status(world, meeting, host_token, "stop").status_code == 204
    stopped = world.hook.wait_for("meeting.rtms_stopped", lambda d: d["body"]["payload"]["rtms_stream_id"] ==
                                  started["rtms_stream_id"])["body"]["payload"]
    assert stopped["stop_reason"] == 1
    nothing = _status(world, meeting, host_token, "stop")
    assert nothing.status_code == 400 and nothing.json() == {"code": 2310,
                                                             "message": "Failed to perform RTMS app operation"}


def test_gating(world):
    meeting = world.meeting(participants=[{"name": "Ben"}, {"name": "Cora", "role": "co-host"},
                                          {"name": "Gus", "guest": True}])
    ben, cora = meeting["participants"][1], meeting["participants"][2]
    ben_token = _tokens_for(world, ben["user_id"])["access_token"]
    cora_token = _tokens_for(world, cora["user_id"])["access_token"]
    host_token = _tokens_for(world, meeting["host_user_id"])["access_token"]
    refused = _status(world, meeting, ben_token)
    assert refused.status_code == 403 and refused.json() == {"code": 2308, "message": "Not allowed to start RTMS app"}
    guest = meeting["participants"][3]
    assert _status(world, meeting, host_token, participant_user_id=guest["user_id"] or "nobody").status_code == 403
    assert _status(world, meeting, host_token, "dance").json()["code"] == 300
    other_app = _status(world, meeting, host_token, client_id="someone-else")
    assert other_app.status_code == 400
    assert _api(world, "PATCH", f"/live_meetings/{meeting['id']}/rtms_app/status", "bogus",
                json={"action": "start"}).json() == {"code": 124, "message": "Invalid access token."}
    assert _status(world, meeting, cora_token).status_code == 204  # a co-host in the meeting may
    world.sim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": "p1"})
    assert _status(world, meeting, host_token, "stop").status_code == 204  # the host need not be present
    world.sim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": cora["key"]})
    assert _status(world, meeting, cora_token).status_code == 403  # an absent co-host may not
    world.sim.post(f"/_sim/meetings/{meeting['id']}/end")
    ended = _status(world, meeting, host_token)
    assert ended.status_code == 404 and ended.json()["code"] == 3001


def test_ineligible_account_and_disabled_sharing(world):
    meeting = world.meeting(host={"name": "Basic Bob", "account_id": "acct-basic"})
    token = _tokens_for(world, meeting["host_user_id"])["access_token"]
    world.sim.put("/_sim/settings/account/acct-basic", json={"rtms_eligible": False})
    ineligible = _status(world, meeting, token)
    assert ineligible.status_code == 400 and ineligible.json()["code"] == 2310
    world.sim.put("/_sim/settings/account/acct-basic", json={"rtms_eligible": True, "share_with_apps": False})
    assert _status(world, meeting, token).json()["code"] == 2310
    world.sim.put("/_sim/settings/user/" + meeting["host_user_id"], json={"share_with_apps": True})
    assert _status(world, meeting, token).status_code == 204  # the user level overrides the account level


def test_fault_rest_error(world):
    meeting = world.meeting()
    token = _tokens_for(world, meeting["host_user_id"])["access_token"]
    world.sim.post("/_sim/faults", json={"kind": "rest_error", "path_contains": "rtms_app", "status": 503,
                                         "code": 3000, "message": "Service unavailable"})
    failed = _status(world, meeting, token)
    assert failed.status_code == 503 and failed.json() == {"code": 3000, "message": "Service unavailable"}
    assert _status(world, meeting, token).status_code == 204


def test_fault_oauth_error(world, user):
    first = _tokens_for(world, user["user_id"])
    world.sim.post("/_sim/faults", json={"kind": "oauth_error", "grant_type": "refresh_token", "status": 503,
                                         "count": 2})
    for _ in range(2):
        busy = _token(world, grant_type="refresh_token", refresh_token=first["refresh_token"])
        assert busy.status_code == 503 and busy.headers["Content-Type"].startswith("text/html")
    world.sim.post("/_sim/faults", json={"kind": "oauth_error", "client_id": world.client_id, "status": 429,
                                         "error": "rate_limited", "reason": "Too many requests", "retry_after": 1})
    limited = _token(world, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert limited.json() == {"reason": "Too many requests", "error": "rate_limited"}
    # Nothing was spent: the refresh token still works once the faults are used up.
    renewed = _token(world, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert renewed.status_code == 200 and renewed.json()["access_token"]


def test_fault_rest_error_with_retry_after(world):
    meeting = world.meeting()
    token = _tokens_for(world, meeting["host_user_id"])["access_token"]
    world.sim.post("/_sim/faults", json={"kind": "rest_error", "path_contains": "rtms_app", "status": 429,
                                         "code": 429, "message": "Too many requests", "retry_after": 2})
    limited = _status(world, meeting, token)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert _status(world, meeting, token).status_code == 204
