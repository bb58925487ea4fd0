"""Calls to Zoom's REST API on a host's or user's behalf (rtms_app/status), run after commit off the caller's thread.

In daphne the committing thread is the one every sync view and consumer database call shares, and Zoom's
webhook for the very start we asked for must not wait behind our call; so calls go to a small pool. While Zoom is
busy, one of its threads at most waits to retry and the other calls fall back at once (rtms/zoom_rest.py). The
answer comes back through a do_* action (zoomapp.consent.actions.starting).
"""

import atexit
import logging
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from django.db import InterfaceError, OperationalError, connection, transaction

from rtms import zoom_rest
from zoomapp.marketplace import oauth

log = logging.getLogger("zoomapp.consent")

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="zoom-rest")
_running = set()  # futures handed to the pool and not done yet (drain)
_running_lock = threading.Lock()


def after_commit(fn, *args):
    """Run fn(*args) on the pool once the current transaction commits; its errors are logged."""

    def run():
        try:
            fn(*args)
        except (OperationalError, InterfaceError):
            # The pool thread keeps its own connection between calls (a new PostgreSQL backend per call cost more
            # than the call); one that failed (PostgreSQL restarted) is dropped, so the next call reconnects.
            connection.close()
            log.exception("call to Zoom failed", extra={"call": fn.__name__})
        except Exception:  # logged; the share's own timeout (tasks.fail_stuck_starts) repairs it
            log.exception("call to Zoom failed", extra={"call": fn.__name__})

    def submit():
        future = _pool.submit(run)
        with _running_lock:
            _running.add(future)
        future.add_done_callback(_forget)

    transaction.on_commit(submit)


def _forget(future):
    with _running_lock:
        _running.discard(future)


def drain(timeout=None):
    """Wait until the calls already handed to the pool are done (a process exiting, or a test about to reset the
    database, must not cut a call to Zoom and the change it records in half), by default as long as one call may
    wait on Zoom with its retries. Returns whether all finished."""
    with _running_lock:
        pending = list(_running)
    _, not_done = wait(pending, timeout=zoom_rest.longest_call_seconds() if timeout is None else timeout)
    return not not_done


atexit.register(drain)


def _meeting_ref(meeting):
    """REST wants the numeric id; a UUID works too when double-encoded (Zoom's rule for '/'-bearing UUIDs)."""
    return meeting.zoom_meeting_id or meeting.uuid


def rtms_app_status(meeting, action, token_user_ids, participant_user_id=None):
    """PATCH rtms_app/status for the meeting's app with the first of `token_user_ids` that has a usable grant.

    Returns (outcome, detail): "ok", "not_allowed" (Zoom 2308), "no_token" (nobody authorized the app,
    re-authorization needed, or Zoom could not refresh a token now: that grant stays usable), "refused" (any other
    error, Zoom still busy or failing after zoom_rest's short retries among them, or at once while another call
    found Zoom busy; detail says which).
    """
    app = meeting.app
    no_token_detail = "nobody with a usable grant"
    for user_id in dict.fromkeys(u for u in token_user_ids if u):

        def token_provider(force_refresh=False, _user=user_id):
            return oauth.access_token_for(app, _user, force_refresh=force_refresh)

        try:
            zoom_rest.update_rtms_app_status(
                _meeting_ref(meeting), action, app.client_id,
                participant_user_id=participant_user_id, token_provider=token_provider,
            )
        except oauth.OAuthError as exc:
            no_token_detail = f"{user_id}: {exc}"
            continue
        except zoom_rest.NotAllowedToStartRtms as exc:
            return "not_allowed", f"{exc.code} {exc.message}"
        except zoom_rest.AccessTokenInvalid as exc:  # refused even after a refresh: try the next grant
            no_token_detail = f"{user_id}: {exc.message}"
            continue
        except zoom_rest.ZoomRestError as exc:
            return "refused", f"{exc.status} {exc.code} {exc.message}"
        return "ok", user_id
    return "no_token", no_token_detail
