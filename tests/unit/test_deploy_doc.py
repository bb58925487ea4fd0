"""docs/DEPLOY.md names only what exists: the Zoom Apps SDK capabilities it tells the operator to add are exactly the
panel's, every URL of ours it names is routed, every setting is in .env.example, every metric is defined and every
register_zoom_app option exists."""

import re
from pathlib import Path

import pytest
from django.urls import Resolver404, resolve

from rtms import metrics
from zoomapp.marketplace.management.commands.register_zoom_app import Command as RegisterZoomApp
from zoomapp.routing import websocket_urlpatterns

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "DEPLOY.md").read_text()
SITE_HOST = "rtms.example.com"  # the doc's stand-in for SITE_URL


def doc_capabilities():
    block = re.search(r"<!-- capabilities:.*?-->(.*?)<!-- /capabilities -->", DOC, re.S)
    assert block, "the capability list's markers are missing from docs/DEPLOY.md"
    return re.findall(r"^\s*- `(\w+)`\s*$", block.group(1), re.M)


def panel_capabilities():
    source = (ROOT / "static" / "panel" / "panel.js").read_text()
    declared = re.search(r"const CAPABILITIES = \[(.*?)\];", source, re.S)
    assert declared, "static/panel/panel.js no longer declares CAPABILITIES"
    assert "capabilities: CAPABILITIES" in source  # what zoomSdk.config is given
    return re.findall(r'"(\w+)"', declared.group(1))


def test_the_capability_list_is_the_panels():
    assert doc_capabilities() == panel_capabilities()


def _our_paths():
    """Paths on our host: https:// and wss:// URLs on the example SITE_URL, and `/…` paths in backquotes."""
    paths = {m.group(1) for m in re.finditer(r"(?:https|wss)://" + re.escape(SITE_HOST) + r"(/[^\s`)|]*)", DOC)}
    paths |= {m.group(1) for m in re.finditer(r"`(/[a-z][^`\s]*)`", DOC) if not m.group(1).startswith("/data/")}
    return sorted(p.split("?")[0].replace("<client_id>", "abcClient1") for p in paths)


@pytest.mark.parametrize("path", _our_paths())
def test_every_url_named_is_routed(path):
    if path.startswith("/ws/"):
        routes = {"/" + str(pattern.pattern) for pattern in websocket_urlpatterns}
        # A prefix such as /ws/ (what the proxy forwards) names every route under it.
        assert path in routes or (path.endswith("/") and any(r.startswith(path) for r in routes)), (path, routes)
        return
    try:
        resolve(path)
    except Resolver404:
        pytest.fail(f"docs/DEPLOY.md names {path}, which no URL pattern serves")


def test_the_urls_zoom_is_given_are_named():
    assert {"/zoom/webhooks/abcClient1", "/panel/abcClient1/", "/zoom/oauth/callback/abcClient1",
            "/zoom/oauth/callback/abcClient1/console"} <= set(_our_paths())


def test_every_setting_named_is_in_env_example():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    named = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})(?:=[^`]*)?`", DOC)) - {"FAILED_APP_STREAM_LIMIT",
                                                                        "FAILED_ACCOUNT_STREAM_LIMIT",
                                                                        "FAILED_SERVER_URL_NOT_ALLOWED",
                                                                        "AUTHENTICATION_FAILURE", "CAPABILITIES"}
    assert named and named <= documented, named - documented


def test_every_metric_named_is_defined():
    defined = set()
    for value in vars(metrics).values():
        name = getattr(value, "_name", None)
        if isinstance(name, str):
            defined |= {name, name + "_total"}
    named = set(re.findall(r"`((?:zoom|rtms)_[a-z_]+)(?:\{[^`]*)?`", DOC))
    assert named and named <= defined, named - defined


def test_every_register_zoom_app_option_exists():
    parser = RegisterZoomApp().create_parser("manage.py", "register_zoom_app")
    known = {option for action in parser._actions for option in action.option_strings}
    named = set(re.findall(r"(--[a-z][a-z-]+)", DOC.split("register_zoom_app", 1)[1].split("```", 1)[0]))
    assert named and named <= known, named - known
