"""Who may call the operator endpoints (`/metrics`, `/healthz?deep=1`): docs/SECURITY.md "Operators and account
admins".

An operator either sends `Authorization: Bearer <OPERATOR_TOKEN>` or connects directly from an address in
OPERATOR_NETWORKS (loopback by default). A request that came through a proxy never passes by address: a proxy on
the same host would make every Internet client look like 127.0.0.1.
"""

import functools
import ipaddress
import logging
import secrets

from django.conf import settings
from django.http import JsonResponse

log = logging.getLogger(__name__)

# Headers a reverse proxy adds to what it forwards (a client may add them too, which only ever refuses more).
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")

HOW_TO_CALL = ("send 'Authorization: Bearer <token>' with the token set in OPERATOR_TOKEN on the server, or call "
               "it directly (not through a proxy) from an address listed in OPERATOR_NETWORKS")


def _bearer(request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _direct_from_operator_network(request):
    if any(request.META.get(header) for header in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in settings.OPERATOR_NETWORKS)


def _why_not_operator(request):
    """None for an operator's request, else (status, error code, why)."""
    if "Authorization" in request.headers:
        given, expected = _bearer(request), settings.OPERATOR_TOKEN
        if given and expected and secrets.compare_digest(given.encode(), expected.encode()):
            return None
        return 401, "bad_operator_token", "that is not this deployment's operator token"
    if _direct_from_operator_network(request):
        return None
    return 403, "operators_only", "this address may not call it without a token"


def is_operator(request):
    return _why_not_operator(request) is None


def refusal(request):
    """None when the request is an operator's, else the JSON response refusing it (401 bad token, 403 otherwise)."""
    why_not = _why_not_operator(request)
    if why_not is None:
        return None
    status, error, why = why_not
    log.warning("operator endpoint refused", extra={"path": request.path, "address": request.META.get("REMOTE_ADDR"),
                                                    "why": error})
    response = JsonResponse({"error": error, "message": f"{request.path} is for operators ({why}): {HOW_TO_CALL}."},
                            status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="operators"'
    return response


def operator_only(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        return refusal(request) or view(request, *args, **kwargs)

    return wrapper
