"""The simulated Zoom window: meeting pages per participant, the Apps panel with the native side of the
Zoom Apps SDK, and the web portal's Zoom Apps settings. Mounted by the simulator's HTTP server."""

from pathlib import Path

from zoomsim.window.hub import WindowHub
from zoomsim.window.pages import Pages

STATIC = Path(__file__).parent / "static"


def add_routes(app, sim):
    hub = WindowHub(sim)
    pages = Pages(sim, hub)
    app["window_hub"] = hub
    app.router.add_get("/", pages.index)
    app.router.add_post("/meetings", pages.create_meeting)
    app.router.add_post("/meetings/{meeting}/people", pages.add_person)
    app.router.add_get("/meetings/{meeting}/as/{key}", pages.meeting_window)
    app.router.add_get("/meetings/{meeting}/as/{key}/ws", pages.meeting_socket)
    app.router.add_get("/portal", pages.portal_index)
    app.router.add_get("/portal/{level}/{ident}", pages.portal_settings)
    app.router.add_post("/portal/{level}/{ident}/share", pages.portal_share)
    app.router.add_post("/portal/{level}/{ident}/auto-start", pages.portal_auto_start)
    app.router.add_static("/zoomsim/static/", STATIC)
