"""End-to-end layer: the fixtures every browser test shares (Chromium, our stack, people's windows with the panel).

Playwright's sync API runs an event loop in the test thread, so Django's async-safety check would refuse the ORM
calls our tests make: it is turned off for this layer only.
"""

import os

import pytest

from tests.e2e.axe_support import axe_script  # noqa: F401 - a fixture of the layer
from tests.e2e.panel_support import Person, stack  # noqa: F401 - a fixture of the layer
from tests.e2e.zoom_window_fixtures import app_server, browser  # noqa: F401 - fixtures of the layer

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.fixture
def people(browser, stack):  # noqa: F811 - the fixtures imported above
    """people(meeting, "Ana", "Ben", ...): each one's Zoom window with our panel open, closed after the test."""
    opened = []

    def open_for(meeting, *names):
        result = [Person(browser, stack, meeting, name).open_panel() for name in names]
        opened.extend(result)
        return result

    yield open_for
    for person in opened:
        person.close()
