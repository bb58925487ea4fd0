"""The admin console in a browser: a context whose Zoom sign-in lands on the test's daphne, signed in as an owner.

Zoom redirects to our SITE_URL; in the tests that is the session daphne on a free port, so the browser is sent on
to it (one route rule) exactly as the real redirect would land. The simulator's OAuth signs in whoever its cookie
names (zoomsim/README.md): the admin at her computer.
"""

from urllib.parse import urlsplit


def console_context(browser, daphne, zoomsim, settings, user_id, viewport):
    context = browser.new_context(viewport=viewport)
    context.add_cookies([{"name": "zoomsim_user", "value": user_id, "url": zoomsim.http_url}])
    site = urlsplit(settings.SITE_URL)
    context.route(f"{site.scheme}://{site.netloc}/**", lambda route: route.fulfill(
        status=302, headers={"Location": daphne.url + route.request.url[len(settings.SITE_URL):]}))
    return context


def sign_in(page, daphne, app_name):
    """Click "Sign in with Zoom (<app>)" on the sign-in page and land on the console's first page."""
    page.goto(f"{daphne.url}/console/signin")
    page.click(f"text=Sign in with Zoom ({app_name})")
    page.wait_for_url(f"{daphne.url}/console/sharing")
