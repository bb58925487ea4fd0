"""The site's error pages when DEBUG is off (zoomapp/urls.py handler404 / handler500, settings CSRF_FAILURE_VIEW):
the console's look, the reason and the next step, no inline script (docs/SECURITY.md "Operators and account
admins", *Error pages*).

A 404's message is shown only when our own code raised it (`raise Http404("No such meeting in your account.")`:
a sentence meant for the person); Django's own (the URL resolver's, get_object_or_404's) can name paths or models
and stay hidden. JSON endpoints (the panel's API, Zoom's webhooks) answer JSON as their own refusals do.
"""

import re

from django.http import HttpResponse, JsonResponse
from django.template import loader

from zoomapp.marketplace.security_headers import zoom_page_headers

JSON_PATHS = re.compile(r"^/(panel/[^/]+/api/|zoom/webhooks/)")
NOT_FOUND = "There is no page at this address."
SERVER_ERROR = ("Something went wrong on our side. Try again in a minute; if it keeps happening, tell this "
                "deployment's operator when it happened, so they can find it in the log.")
FORM_EXPIRED = "Your session's form expired: reload the page and try again."


def message_for_people(exception):
    """The Http404's message when our own code raised it with one, else None."""
    traceback = exception.__traceback__
    if traceback is None or not exception.args or not isinstance(exception.args[0], str):
        return None
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    raised_in = traceback.tb_frame.f_globals.get("__name__", "")
    return exception.args[0] if raised_in.startswith("zoomapp.") else None


def _answer(request, status, error, message, template):
    if JSON_PATHS.match(request.path):
        return JsonResponse({"error": error, "message": message}, status=status)
    # Rendered without the request: no context processor (session, messages) runs on a failing request.
    return HttpResponse(loader.get_template(template).render({"message": message}), status=status)


@zoom_page_headers
def page_not_found(request, exception):
    return _answer(request, 404, "not_found", message_for_people(exception) or NOT_FOUND, "404.html")


@zoom_page_headers
def server_error(request):
    return _answer(request, 500, "server_error", SERVER_ERROR, "500.html")


@zoom_page_headers
def csrf_failure(request, reason=""):
    """Django has logged the reason (django.security.csrf); the person is told what to do."""
    return _answer(request, 403, "form_expired", FORM_EXPIRED, "403_csrf.html")
