"""Zoom's REST control of RTMS: PATCH /v2/live_meetings/{meetingId}/rtms_app/status (docs/ZOOM.md §7).

The caller supplies a token provider, `token_provider(force_refresh=False) -> access token`, so this module knows
nothing about how tokens are stored (rtms never imports zoomapp). A 401 gets one retry with a refreshed token.
Zoom busy or failing (429, 5xx, code 3000, a connection that could not be opened) gets up to RETRY_DELAYS_S
retries, at Zoom's Retry-After when it gives one up to MAX_RETRY_AFTER_S, all within RETRY_WINDOW_S of the first
try: these calls sit on a person's click. Zoom busy is known process-wide until its Retry-After (or the next
retry): meanwhile only the call that saw it first retries, every other call is not sent and falls back at once
(docs/ZOOM.md §7.3, "Retries"). Success is any 2xx (Zoom documents 204; §7.3 says to accept any); every error is a
ZoomRestError, of the subclass that names Zoom's answer (status, code and message kept on it):

- NotAllowedToStartRtms: 2308, the caller is not the host/alt host (or joined anonymously by link);
- RtmsOperationFailed: 2310, account not eligible, sharing disabled, concurrency limit, no stream to act on;
- MeetingNotFound: 404 / 3001, the meeting does not exist or is not live;
- AccessTokenInvalid: 401 even after a refresh (124), or 403 without a Zoom code: re-authorize;
- ZoomUnavailable: unreachable, 5xx, 429 or 3000, still so after the retries;
- InvalidRequest: any other 4xx (300: bad body, or a client_id that is not the token's app).
"""

import logging
import threading
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError

log = logging.getLogger("rtms.zoom_rest")

ACTIONS = ("start", "stop", "pause", "resume")

RETRY_DELAYS_S = (0.5, 1.0)  # waits before the second and third try when Zoom names no Retry-After
MAX_RETRY_AFTER_S = 2.0  # a longer Retry-After (a daily limit names tomorrow) is not waited for: we give up
RETRY_WINDOW_S = 5.0  # no retry starts later than this after the first try (a connect timeout can eat the rest)
BUSY_AT_MOST_S = 60.0  # a longer Retry-After (a daily limit) still lets one call a minute find out whether it holds

# Until when (time.monotonic()) Zoom is known busy or failing: set by the call Zoom refused, which alone retries.
_busy_until = 0.0
_busy_lock = threading.Lock()


def longest_call_seconds():
    """How long one call may wait on Zoom: its last retry starts within RETRY_WINDOW_S and may take a timeout."""
    return RETRY_WINDOW_S + settings.ZOOM_HTTP_TIMEOUT


def _zoom_busy_for():
    return _busy_until - time.monotonic()


def _claim_retry(wait):
    """Zoom is busy for `wait` s from now. True when this call is the one to retry after it: no other call already
    found Zoom busy (those fall back at once)."""
    global _busy_until
    with _busy_lock:
        now = time.monotonic()
        claimed = _busy_until <= now
        _busy_until = max(_busy_until, now + wait)
    return claimed


def _zoom_answered():
    global _busy_until
    with _busy_lock:
        _busy_until = 0.0

# One HTTP session per calling thread: its connection to Zoom is kept open between calls, so a start does not pay
# a new TCP and TLS handshake with Zoom's API first (the callers are a few long-lived threads,
# zoomapp/consent/zoom_calls.py).
_sessions = threading.local()


def _session():
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session


class ZoomRestError(Exception):
    def __init__(self, status, code, message):
        super().__init__(f"HTTP {status} code {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class NotAllowedToStartRtms(ZoomRestError):
    pass


class RtmsOperationFailed(ZoomRestError):
    pass


class MeetingNotFound(ZoomRestError):
    pass


class AccessTokenInvalid(ZoomRestError):
    pass


class ZoomUnavailable(ZoomRestError):
    pass


class InvalidRequest(ZoomRestError):
    pass


def error_class(status, code):
    if code == 2308:
        return NotAllowedToStartRtms
    if code == 2310:
        return RtmsOperationFailed
    if status == 404 or code == 3001:
        return MeetingNotFound
    if status == 0 or status >= 500 or status == 429 or code == 3000:
        return ZoomUnavailable
    if status in (401, 403) or code == 124:
        return AccessTokenInvalid
    return InvalidRequest


def meeting_path_id(meeting_id):
    """Numeric ids as they are; a UUID starting with '/' or containing '//' is double-encoded (Zoom's rule)."""
    meeting_id = str(meeting_id)
    if meeting_id.isdigit():
        return meeting_id
    encoded = quote(meeting_id, safe="")
    return quote(encoded, safe="") if meeting_id.startswith("/") or "//" in meeting_id else encoded


def _retry_after_seconds(value):
    """Zoom's Retry-After: seconds, an HTTP date, or (its daily limit) an ISO 8601 time. None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def update_rtms_app_status(meeting_id, action, client_id, *, token_provider, participant_user_id=None):
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}")
    body = {"action": action, "settings": {"client_id": client_id}}
    if participant_user_id:
        body["settings"]["participant_user_id"] = participant_user_id
    url = f"{settings.ZOOM_API_URL}/live_meetings/{meeting_path_id(meeting_id)}/rtms_app/status"
    busy_for = _zoom_busy_for()
    if busy_for > 0:
        raise ZoomUnavailable(0, 0, f"Zoom busy or failing for another call, not sent (for {busy_for:.1f} s more)")
    retry_until = time.monotonic() + RETRY_WINDOW_S
    retries = 0
    force_refresh = False
    refreshed = False
    while True:
        token = token_provider(force_refresh=force_refresh)
        force_refresh = False
        try:
            response = _session().patch(url, json=body, headers={"Authorization": f"Bearer {token}"},
                                        timeout=settings.ZOOM_HTTP_TIMEOUT)
        except requests.RequestException as exc:
            failure = ZoomUnavailable(0, 0, f"Zoom could not be reached: {exc.__class__.__name__}")
            if not _never_sent(exc):  # Zoom may have acted on it (a second start is refused): not retried
                raise failure from None
            wait = None
        else:
            if response.status_code == 401 and not refreshed:
                force_refresh = refreshed = True
                continue
            if 200 <= response.status_code < 300:
                _zoom_answered()
                log.info("rtms_app status updated", extra={"action": action, "client_id": client_id,
                                                           "zoom_meeting_id": str(meeting_id), "retries": retries})
                return
            failure = _refusal(response)
            log.warning("rtms_app status refused", extra={"action": action, "client_id": client_id,
                                                          "status": failure.status, "code": failure.code,
                                                          "zoom_meeting_id": str(meeting_id)})
            if not isinstance(failure, ZoomUnavailable):
                raise failure
            wait = _retry_after_seconds(response.headers.get("Retry-After"))
        if wait is None:
            wait = RETRY_DELAYS_S[min(retries, len(RETRY_DELAYS_S) - 1)]
        if not _claim_retry(min(wait, BUSY_AT_MOST_S)) or retries == len(RETRY_DELAYS_S):
            raise failure
        if wait > MAX_RETRY_AFTER_S or time.monotonic() + wait > retry_until:
            raise failure
        retries += 1
        log.info("rtms_app status retried", extra={"action": action, "client_id": client_id, "retry": retries,
                                                   "wait_s": wait, "zoom_meeting_id": str(meeting_id)})
        time.sleep(wait)


def _never_sent(exc):
    """The connection could not be opened (refused, timed out, no route, name unknown): Zoom saw nothing. A reset
    or a close after the request went out is not that."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if isinstance(exc, requests.ConnectionError) and exc.args else None
    return isinstance(reason, ConnectTimeoutError)  # urllib3's NewConnectionError (refused, DNS) is one too

def _refusal(response):
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    code = payload.get("code") if isinstance(payload.get("code"), int) else 0
    message = payload.get("message") if isinstance(payload.get("message"), str) else response.reason
    return error_class(response.status_code, code)(response.status_code, code, message)
