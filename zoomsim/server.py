"""Process wiring: the HTTP server (aiohttp), the RTMS server (picows), the ready file, clean shutdown."""

import asyncio
import importlib.util
import json
import logging
import os
import signal

from aiohttp import web

from zoomsim import control_api, oauth, rest
from zoomsim.state import Simulator

log = logging.getLogger("zoomsim")


def build_http_app(sim):
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app["sim"] = sim
    oauth.add_routes(app)
    rest.add_routes(app)
    control_api.add_routes(app)
    if importlib.util.find_spec("zoomsim.window") is not None:
        window = importlib.import_module("zoomsim.window")
        if hasattr(window, "add_routes"):
            window.add_routes(app, sim)
    return app


async def serve(config):
    sim = Simulator(config)
    await sim.start()
    app = build_http_app(sim)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)  # open window sockets
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    http_port = runner.addresses[0][1]
    rtms_server = await sim.rtms.listen(config.host, config.rtms_port)
    rtms_port = rtms_server.sockets[0].getsockname()[1]
    sim.set_urls(f"http://{config.url_host}:{http_port}", f"ws://{config.url_host}:{rtms_port}")
    await sim.after_listening()
    if config.ready_file:
        with open(config.ready_file + ".tmp", "w") as ready:
            json.dump({"http_url": sim.http_url, "rtms_url": sim.rtms_url}, ready)
        os.replace(config.ready_file + ".tmp", config.ready_file)
    print(f"zoomsim ready {sim.http_url}", flush=True)
    log.info("event=ready http_url=%s rtms_url=%s", sim.http_url, sim.rtms_url)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("event=shutdown")
    await sim.shutdown()
    rtms_server.close()
    await runner.cleanup()
