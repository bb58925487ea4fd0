"""A private redis-server on a free port, for tests that stop and start Redis."""

import shutil
import subprocess
import time

import redis

from tests.processes import free_port, wait_for


class PrivateRedis:
    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.popen = None

    def start(self):
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (apt-get install redis-server)"
        self.popen = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: redis.Redis.from_url(self.url).ping(), 10, "private redis-server")
        return self

    def stop(self):
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(10)
        started = time.monotonic()
        wait_for(lambda: not self._answers(), 10, "private redis-server to stop")
        return time.monotonic() - started

    def _answers(self):
        try:
            return redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
        except redis.ConnectionError:
            return False
