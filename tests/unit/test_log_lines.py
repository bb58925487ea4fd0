"""A log line (zoomapp/logfmt.py) is one logfmt line whatever a value holds, and holds nothing that must not be
logged: the query string of a request Django logs (an OAuth callback's unspent code), a failed task's arguments."""

import logging

from django.test import RequestFactory

from zoomapp.logfmt import LogfmtFormatter


def line(msg, **extra):
    record = logging.makeLogRecord({"name": "django.request", "levelname": "WARNING", "msg": msg, **extra})
    return LogfmtFormatter().format(record)


def test_a_refused_oauth_callback_is_logged_without_its_code():
    request = RequestFactory().get("/zoom/oauth/callback/abc", {"code": "SECRET_AUTH_CODE", "state": "forged"})
    logged = line("Bad Request: /zoom/oauth/callback/abc", request=request, status_code=400)
    assert 'request="GET /zoom/oauth/callback/abc"' in logged and "status_code=400" in logged
    assert "SECRET_AUTH_CODE" not in logged and "forged" not in logged


def test_a_failed_tasks_arguments_are_left_out():
    logged = line("Task consent.auto_start[1] raised unexpected: KeyError()",
                  data={"args": ["cid", "uuid", "u1", "Dana Private"], "kwargs": {}})
    assert "Dana Private" not in logged


def test_control_characters_cannot_break_or_forge_a_line():
    logged = line("panel action refused", action='approve\r\nts=2026 level=info msg="forged"\t\x1b[2J')
    assert "\n" not in logged and "\r" not in logged and "\t" not in logged and "\x1b" not in logged
    assert 'action="approve\\x0d\\nts=2026 level=info msg=\\"forged\\"\\x09\\x1b[2J"' in logged


def test_plain_values_stay_bare_and_others_are_quoted():
    assert "stream=abc123" in line("m", stream="abc123")
    assert 'user_name="Zoë Ng"' in line("m", user_name="Zoë Ng") and "user_name=Zoë" in line("m", user_name="Zoë")
