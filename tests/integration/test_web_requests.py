"""An HTTP request through the web process's ASGI application (zoomapp/asgi.py) runs Django's middleware and view
entered from the event loop once, not once per middleware step (docs/PERFORMANCE.md "2026-12-02 (session 23)"),
and the middleware still does its work: security headers, the page's own headers, the 404 for an unknown app."""

import asyncio

import pytest
from asgiref.testing import ApplicationCommunicator

from tests.consent_support import context_for, meeting_uuid
from zoomapp.consent.models import Participant

pytestmark = pytest.mark.django_db(transaction=True)

# Django's request_started signal, the middleware chain with its view, and the response's close (which sends
# request_finished). Django's own handler made sixteen for the same page.
HOPS_PER_REQUEST = 3


def serve(path, headers=()):
    """One GET through the web process's ASGI application; returns (status, headers, body, hops), where hops
    counts the request's calls from the event loop into a thread."""
    from zoomapp.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers], "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def request():
        loop = asyncio.get_running_loop()
        hops = []
        into_thread = loop.run_in_executor

        def counted(executor, func, *args):
            hops.append(func)
            return into_thread(executor, func, *args)

        loop.run_in_executor = counted
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(10)
        body = b""
        while True:
            message = await communicator.receive_output(10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await communicator.wait(10)
        return start["status"], {name.lower(): value for name, value in start["headers"]}, body, len(hops)

    return asyncio.run(request())


def test_the_panel_page_is_served_with_its_headers_in_one_entry_into_django(app):
    uuid = meeting_uuid()
    context = context_for(app, uuid, "pat1", "participant").encode()

    status, headers, body, hops = serve(f"/panel/{app.client_id}/", [(b"x-zoom-app-context", context)])

    assert status == 200
    assert b'data-token="' in body and b'data-token=""' not in body  # the context was verified and bound
    assert Participant.objects.filter(meeting__uuid=uuid, user_id="pat1", present=True).exists()
    assert headers[b"x-content-type-options"] == b"nosniff"  # SecurityMiddleware ran
    assert b"frame-ancestors" in headers[b"content-security-policy"]  # the page's own headers, for Zoom's client
    assert hops <= HOPS_PER_REQUEST


def test_an_unknown_app_is_refused_by_the_same_chain(app):
    status, _, _, hops = serve("/panel/cidnosuchapp/")

    assert status == 404
    assert hops <= HOPS_PER_REQUEST + 1  # Django logs a 4xx response in a thread of its own
