"""End-to-end layer only: Playwright's sync API runs an event loop in the test thread, so Django's async-safety
check would refuse the ORM calls our tests make (TESTING.md)."""

import os

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
