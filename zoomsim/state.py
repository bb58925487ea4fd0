"""The simulated Zoom: apps, users, meetings, streams (skeleton; filled in next)."""

import picows


class _RtmsStub:
    async def listen(self, host, port):
        return await picows.ws_create_server(lambda request: None, host, port)


class Simulator:
    def __init__(self, config):
        self.config = config
        self.rtms = _RtmsStub()
        self.http_url = self.rtms_url = ""

    async def start(self):
        pass

    def set_urls(self, http_url, rtms_url):
        self.http_url, self.rtms_url = http_url, rtms_url

    async def after_listening(self):
        pass

    async def shutdown(self):
        pass
