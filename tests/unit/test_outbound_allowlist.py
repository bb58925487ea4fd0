"""The outbound allow list: which RTMS server URLs a worker may open a socket to, as a hostile webhook or
signaling reply would try to bend it."""

import pytest

from rtms.client.allowlist import HostAllowList, URLNotAllowed

PRODUCTION = HostAllowList(["*.zoom.us"])
DEVELOPMENT = HostAllowList(["127.0.0.1", "localhost"], allow_insecure=True)


@pytest.mark.parametrize("url", ["wss://rtms.zoom.us/signaling", "wss://sjc1-rtms.sjc.zoom.us:443/x?y=1",
                                 "WSS://RTMS.ZOOM.US/signaling"])
def test_zooms_hosts_over_wss_pass_in_production(url):
    assert PRODUCTION.check(url) == url


@pytest.mark.parametrize(("url", "why"), [
    ("ws://rtms.zoom.us/signaling", "only wss:// is allowed (RTMS_ALLOW_INSECURE_WS is off)"),
    ("wss://zoom.us/signaling", "'zoom.us' is not in RTMS_ALLOWED_HOSTS"),
    ("wss://evil.example/signaling", "'evil.example' is not in RTMS_ALLOWED_HOSTS"),
    ("wss://rtms.zoom.us.evil.example/x", "'rtms.zoom.us.evil.example' is not in RTMS_ALLOWED_HOSTS"),
    ("wss://evilzoom.us/x", "'evilzoom.us' is not in RTMS_ALLOWED_HOSTS"),
    ("wss://rtms.zoom.us@evil.example/x", "credentials in the URL are refused"),
    ("wss://evil.example#.zoom.us", "'evil.example' is not in RTMS_ALLOWED_HOSTS"),
    ("wss://127.0.0.1:9101/signaling", "'127.0.0.1' is not in RTMS_ALLOWED_HOSTS"),
    ("wss://[::1]/signaling", "'::1' is not in RTMS_ALLOWED_HOSTS"),
    ("https://rtms.zoom.us/x", "only wss:// is allowed"),
    ("wss:///nohost", "has no host"),
    ("wss://rtms.zoom.us:99999/x", "is not a valid URL"),
    ("wss://rtms.zoom.us/x\x00", "is not a URL"),
    ("", "is not a URL"),
])
def test_anything_else_is_refused_saying_why(url, why):
    with pytest.raises(URLNotAllowed) as refused:
        PRODUCTION.check(url)
    assert why in str(refused.value)


def test_development_allows_the_simulator_over_plain_ws_and_nothing_more():
    assert DEVELOPMENT.check("ws://127.0.0.1:9101/signaling")
    assert DEVELOPMENT.check("ws://localhost:9101/media/audio")
    for url in ("ws://127.0.0.2:9101/x", "ws://10.0.0.1/x", "ws://169.254.169.254/latest/meta-data"):
        with pytest.raises(URLNotAllowed, match="is not in RTMS_ALLOWED_HOSTS"):
            DEVELOPMENT.check(url)


@pytest.mark.parametrize("pattern", ["*", "*.", "zoom.*", "r*.zoom.us", "*.*.zoom.us"])
def test_only_a_leading_wildcard_label_is_a_pattern(pattern):
    with pytest.raises(ValueError, match="only a leading"):
        HostAllowList([pattern])
