"""App context (docs/ZOOM.md §10): decrypted, verified (aud, iss, exp), and every bad value refused clearly."""

import base64
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.consent_support import context_for, make_app, meeting_uuid
from zoomapp.marketplace.app_context import AppContextRefused, verify_app_context

pytestmark = pytest.mark.django_db
OWASP = ("Strict-Transport-Security", "X-Content-Type-Options", "Content-Security-Policy", "Referrer-Policy")


def test_context_binds_user_meeting_and_role(app):
    meeting = meeting_uuid()
    context = verify_app_context(context_for(app, meeting, "userA", "cohost"), app)
    assert (context.user_id, context.meeting_uuid, context.role) == ("userA", meeting, "co-host")
    assert not context.is_guest


def test_guest_mode_has_no_user(app):
    context = verify_app_context(context_for(app, meeting_uuid(), None), app)
    assert context.is_guest and context.user_id == ""


def test_url_safe_alphabet_without_padding_is_accepted(app):
    value = context_for(app, meeting_uuid(), "userA")
    url_safe = value.replace("+", "-").replace("/", "_").rstrip("=")
    assert verify_app_context(url_safe, app).user_id == "userA"


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"aud": "someone-else"}, "the app context is for another app"),
        ({"iss": "evil.example"}, "the app context was not issued by Zoom"),
        ({"exp": int(time.time() * 1000) - 60_000}, "the app context has expired"),
        ({"typ": "chat"}, "the app was not opened in a meeting"),
        ({"attendrole": "emperor"}, "the app context has no valid attendrole"),
        ({"attendrole": ["host"]}, "the app context has no valid attendrole"),  # no key of ROLE_NAMES: no TypeError
        # A captured context replayed later: still before its (forged, far) exp, but made long ago.
        ({"ts": int(time.time() * 1000) - 600_000, "exp": int(time.time() * 1000) + 3_600_000},
         "the app context is too old; open the app again"),
        ({"ts": None}, "the app context has no valid ts"),
        ({"ts": int(time.time() * 1000) + 3_600_000}, "the app context has no valid ts"),
        ({"mid": "../../etc"}, "the app context holds a malformed id: mid is not a valid meeting uuid: '../../etc'"),
        ({"mid": "A" * 101}, "the app context holds a malformed id: mid is not a valid meeting uuid: "
                             f"'{'A' * 40}… (101 characters)'"),
        ({"uid": "/var/lib"}, "the app context holds a malformed id: uid is not a valid zoom user id: '/var/lib'"),
        ({"uid": "a\x00b"}, "the app context holds a malformed id: uid is not a valid zoom user id: 'a\\x00b'"),
    ],
)
def test_wrong_fields_are_refused_with_a_reason(app, overrides, reason):
    with pytest.raises(AppContextRefused) as refused:
        verify_app_context(context_for(app, meeting_uuid(), "userA", **overrides), app)
    assert refused.value.reason == reason


def test_tampered_context_is_refused(app):
    raw = bytearray(base64.b64decode(context_for(app, meeting_uuid(), "userA")))
    raw[-20] ^= 0x01
    with pytest.raises(AppContextRefused, match="altered"):
        verify_app_context(base64.b64encode(bytes(raw)).decode(), app)


def test_context_of_another_app_is_refused(app):
    other = make_app("Other")
    with pytest.raises(AppContextRefused, match="altered"):
        verify_app_context(context_for(other, meeting_uuid(), "userA"), app)


def test_home_url_with_context_header_sends_zoom_headers_and_a_bound_panel(client, app):
    response = client.get(f"/panel/{app.client_id}/", HTTP_X_ZOOM_APP_CONTEXT=context_for(app, meeting_uuid(), "u1"))
    assert response.status_code == 200
    for name in OWASP:
        assert response.has_header(name), name
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "X-Frame-Options" not in response  # Zoom frames the panel; frame-ancestors says who may
    assert response["Cache-Control"] == "no-store"  # the page carries the person's panel token
    assert b'data-token="' in response.content and b'data-token=""' not in response.content
    assert b"/static/panel/panel.js" in response.content and b"<script>" not in response.content


def test_home_url_without_header_waits_for_the_sdk(client, app):
    response = client.get(f"/panel/{app.client_id}/")
    assert response.status_code == 200
    assert b'data-token=""' in response.content
    for name in OWASP:
        assert response.has_header(name), name


def test_tampered_header_gets_a_clear_refusal_page(client, app):
    value = context_for(app, meeting_uuid(), "u1")
    response = client.get(f"/panel/{app.client_id}/", HTTP_X_ZOOM_APP_CONTEXT=value[:-8] + "AAAAAAA=")
    assert response.status_code == 403
    assert b"could not confirm who you are" in response.content
    assert b'data-token=""' in response.content
    for name in OWASP:
        assert response.has_header(name), name


def test_a_list_as_attendrole_is_refused_at_the_home_url_and_by_the_api(client, app):
    value = context_for(app, meeting_uuid(), "u1", attendrole=["host"])
    page = client.get(f"/panel/{app.client_id}/", HTTP_X_ZOOM_APP_CONTEXT=value)
    assert page.status_code == 403 and b'data-token=""' in page.content
    posted = client.post(f"/panel/{app.client_id}/api/context", data={"context": value},
                         content_type="application/json")
    assert posted.status_code == 403 and posted.json()["error"] == "app_context"
    assert "the app context has no valid attendrole" in posted.json()["message"]


def test_expired_context_posted_by_the_panel_is_refused(client, app):
    old = context_for(app, meeting_uuid(), "u1", now_ms=int(time.time() * 1000) - 600_000)
    response = client.post(f"/panel/{app.client_id}/api/context", data={"context": old},
                           content_type="application/json")
    assert response.status_code == 403
    assert "the app context has expired" in response.json()["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    st.binary(min_size=1, max_size=80).map(lambda b: base64.b64encode(bytes([12]) + b"\0" * 12 + b).decode()),
))
def test_fuzzed_headers_are_refused_never_crash(client, app, value):
    from zoomapp.consent.models import Meeting

    before = Meeting.objects.count()
    with pytest.raises(AppContextRefused):
        verify_app_context(value, app)
    header = value.encode("latin-1", "ignore").decode("latin-1").replace("\n", "").replace("\r", "")
    response = client.get(f"/panel/{app.client_id}/", HTTP_X_ZOOM_APP_CONTEXT=header)
    assert response.status_code in (200, 403)
    posted = client.post(f"/panel/{app.client_id}/api/context", data={"context": value},
                         content_type="application/json")
    assert posted.status_code == 403 and posted.json()["error"] == "app_context"
    assert Meeting.objects.count() == before
