"""Which hosts an RTMS connection may be opened to (docs/SECURITY.md "Outbound connections").

A webhook's `server_urls` and the media URLs in the signaling reply decide where our sockets go and where the
handshake HMAC is sent; both come from outside, so both are checked against a list of host patterns before a
socket is opened. A pattern is an exact host name or address (`127.0.0.1`) or `*.` and a domain (`*.zoom.us`:
any name under zoom.us, not zoom.us itself). Only `wss://` unless insecure `ws://` is allowed (development).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["HostAllowList", "URLNotAllowed"]


class URLNotAllowed(ValueError):
    """A server URL outside the allow list; the message says which URL part was refused and why."""


class HostAllowList:
    __slots__ = ("exact", "suffixes", "allow_insecure")

    def __init__(self, patterns: Iterable[str], allow_insecure: bool = False) -> None:
        suffixes, exact = [], []
        for pattern in patterns:
            pattern = pattern.strip().lower().rstrip(".")
            if not pattern:
                continue
            if pattern.startswith("*."):
                if "*" in pattern[2:] or len(pattern) < 4:
                    raise ValueError(f"host pattern {pattern!r}: only a leading '*.' wildcard is allowed")
                suffixes.append(pattern[1:])  # ".zoom.us"
            elif "*" in pattern:
                raise ValueError(f"host pattern {pattern!r}: only a leading '*.' wildcard is allowed")
            else:
                exact.append(pattern)
        self.exact = frozenset(exact)
        self.suffixes = tuple(suffixes)
        self.allow_insecure = allow_insecure

    def __repr__(self) -> str:
        patterns = sorted(self.exact) + [f"*{suffix}" for suffix in self.suffixes]
        return f"HostAllowList({patterns}, allow_insecure={self.allow_insecure})"

    def check(self, url: str) -> str:
        """Return `url` if a socket may be opened to it, else raise URLNotAllowed saying why."""
        if not isinstance(url, str) or not url or len(url) > 2048 or any(c.isspace() or c == "\x00" for c in url):
            raise URLNotAllowed(f"server URL {str(url)[:80]!r} is not a URL")
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").rstrip(".")
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        except ValueError:
            raise URLNotAllowed(f"server URL {url[:80]!r} is not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("wss", "ws"):
            raise URLNotAllowed(f"server URL {url[:80]!r}: only wss:// is allowed")
        if scheme == "ws" and not self.allow_insecure:
            raise URLNotAllowed(f"server URL {url[:80]!r}: only wss:// is allowed (RTMS_ALLOW_INSECURE_WS is off)")
        if parts.username is not None or parts.password is not None:
            raise URLNotAllowed(f"server URL {url[:80]!r}: credentials in the URL are refused")
        if not host:
            raise URLNotAllowed(f"server URL {url[:80]!r} has no host")
        if host in self.exact or any(host.endswith(suffix) for suffix in self.suffixes):
            return url
        raise URLNotAllowed(f"server URL host {host!r} is not in RTMS_ALLOWED_HOSTS")
