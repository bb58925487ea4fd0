"""The deployment's allow list for RTMS sockets, from RTMS_ALLOWED_HOSTS and RTMS_ALLOW_INSECURE_WS
(docs/SECURITY.md "Outbound connections"). The webhook checks `server_urls` with it before a stream is stored;
the session host hands it to every StreamClient, which checks the signaling URL and the media URLs again."""

from django.conf import settings

from rtms.client.allowlist import HostAllowList, URLNotAllowed


def allowed_hosts():
    return HostAllowList(settings.RTMS_ALLOWED_HOSTS, allow_insecure=settings.RTMS_ALLOW_INSECURE_WS)


def check_server_urls(server_urls):
    """Every ws:// or wss:// URL of a webhook's comma-separated `server_urls` must be allowed, and there must be
    one (URLs of other protocols are never connected to). Raises URLNotAllowed saying which and why."""
    allow = allowed_hosts()
    sockets = [url.strip() for url in server_urls.split(",") if url.strip().lower().startswith(("ws://", "wss://"))]
    if not sockets:
        raise URLNotAllowed("server_urls holds no ws:// or wss:// URL")
    for url in sockets:
        allow.check(url)
    return server_urls
