"""The simulated client's Home URL handling (docs/ZOOM.md §10.5, §11.1): template parameters and the OWASP
header check."""

from types import SimpleNamespace

from aiohttp import web

from zoomsim.window.homeurl import check_home_url
from zoomsim.window.hub import home_url_for
from zoomsim.window.texts import owasp_console_message

SECURE = {"Strict-Transport-Security": "max-age=31536000", "X-Content-Type-Options": "nosniff",
          "Content-Security-Policy": "default-src 'self'", "Referrer-Policy": "same-origin"}


def test_template_parameters_are_filled_and_unknown_ones_become_none():
    app = SimpleNamespace(home_url="https://app.test/home?m={meetingUUID}&c={runningContext}&a={accountId}&i={invitationId}")
    meeting = SimpleNamespace(uuid="ab+c/d==")
    participant = SimpleNamespace(account_id="")
    assert home_url_for(app, meeting, participant) == (
        "https://app.test/home?m=ab%2Bc%2Fd%3D%3D&c=inMeeting&a=none&i=none")


def test_console_message_matches_the_zoom_client():
    assert owasp_console_message(["Referrer-Policy"], "https://a.test/") == (
        'Missing OWASP Secure Headers:"Referrer-Policy"for URL https://a.test/')


async def serve(aiohttp_routes):
    app = web.Application()
    app.add_routes(aiohttp_routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


async def test_check_reports_missing_headers_sends_the_context_and_follows_redirects():
    seen = []

    async def secure(request):
        seen.append(request.headers.get("X-Zoom-App-Context"))
        return web.Response(text="<p>ok</p>", content_type="text/html", headers=SECURE)

    async def partial(request):
        return web.Response(text="<p>no</p>", content_type="text/html",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def moved(request):
        raise web.HTTPFound("/secure")

    runner, base = await serve([web.get("/secure", secure), web.get("/partial", partial), web.get("/moved", moved)])
    try:
        good = await check_home_url(f"{base}/moved", "ctx-value")
        assert (good.status, good.missing_headers, good.error) == (200, [], "")
        assert good.final_url == f"{base}/secure"
        assert seen == ["ctx-value"]
        bad = await check_home_url(f"{base}/partial", "ctx-value")
        assert bad.missing_headers == ["Strict-Transport-Security", "Content-Security-Policy", "Referrer-Policy"]
        missing = await check_home_url(f"{base}/nothing-here", "ctx-value")
        assert missing.error == "HTTP 404"
    finally:
        await runner.cleanup()


async def test_unreachable_home_url_is_an_error_not_a_crash():
    result = await check_home_url("http://127.0.0.1:9/", "ctx")
    assert result.error.startswith("ClientConnectorError")
