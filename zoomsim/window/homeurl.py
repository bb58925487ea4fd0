"""The Zoom client's check of an app's Home URL response (docs/ZOOM.md §11.1).

The desktop client sends `X-Zoom-App-Context` on the Home URL request and refuses to render a 200 `text/html`
response that lacks any of the four OWASP headers. The simulated window's panel is an iframe, which cannot send
headers, so the simulator makes this request itself (server side, with the header) before showing the iframe.
"""

import logging
from dataclasses import dataclass, field

import aiohttp

from zoomsim.window.texts import OWASP_HEADERS, owasp_console_message

log = logging.getLogger("zoomsim.window")

CLIENT_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) ZoomApps/6.6.0 zoomsim"


@dataclass
class HomeUrlCheck:
    status: int | None = None
    final_url: str = ""  # after redirects: its origin is where the panel's SDK messages come from
    missing_headers: list = field(default_factory=list)
    error: str = ""


# The client's WebView waits for the Home URL as a browser waits for a page; the bound only lets an app that
# never answers show an error. (5 s was too short for a loaded 2-core CI machine: a panel never opened.)
HOME_URL_TIMEOUT_S = 30.0


async def check_home_url(url, app_context, timeout_s=HOME_URL_TIMEOUT_S):
    if not url:
        return HomeUrlCheck(error="the app has no Home URL")
    headers = {"X-Zoom-App-Context": app_context, "User-Agent": CLIENT_USER_AGENT}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
            async with session.get(url, headers=headers, allow_redirects=True) as response:
                result = HomeUrlCheck(status=response.status, final_url=str(response.url))
                if response.status == 200 and response.content_type == "text/html":
                    result.missing_headers = [name for name in OWASP_HEADERS if name not in response.headers]
                elif response.status >= 400:
                    result.error = f"HTTP {response.status}"
    except (aiohttp.ClientError, TimeoutError) as error:
        return HomeUrlCheck(error=f"{type(error).__name__}: {error}".rstrip(": "))
    if result.missing_headers:
        log.warning("event=owasp_headers_missing %s", owasp_console_message(result.missing_headers, url))
    return result
