"""How rtms learns an app's client secret (for the RTMS handshake signature) without importing zoomapp.

zoomapp registers a lookup at start-up (zoomapp.marketplace.apps): `register_credentials_lookup(fn)` with
`fn(client_id) -> client_secret` (raising or returning None when the app is unknown).
"""

_lookup = None


class UnknownApp(LookupError):
    pass


def register_credentials_lookup(fn):
    global _lookup
    _lookup = fn


def client_secret_for(client_id):
    if _lookup is None:
        raise UnknownApp("no credentials lookup registered (zoomapp.marketplace must be installed)")
    secret = _lookup(client_id)
    if not secret:
        raise UnknownApp(f"no client secret for app {client_id}")
    return secret
