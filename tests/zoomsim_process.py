"""Start the Zoom simulator as a subprocess on free ports (see zoomsim/README.md).

    with run_zoomsim(tmp_path, retry_scale=0.001, keepalive_interval=0.5) as sim:
        sim.post("/_sim/apps", json={...}); sim.http_url; sim.rtms_url

Keyword arguments become flags (`keepalive_interval=0.5` → `--keepalive-interval 0.5`).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


class ZoomSim:
    def __init__(self, popen, http_url, rtms_url, log_path):
        self.popen = popen
        self.http_url = http_url
        self.rtms_url = rtms_url
        self.log_path = log_path
        self.http = requests.Session()
        self.registered_apps = []  # client ids, by tests.zoomsim_client.register_app

    def delete_registered_apps(self):
        """Delete the apps registered so far, as their developers would. The simulator sends every meeting's
        events to every app it knows: a run-wide simulator kept sending each later test's meetings to every earlier
        test's app, whose rows were gone (a 404 and three retries each, 19,000 in one run), until that load made
        the web process miss Zoom's 3 s."""
        for client_id in self.registered_apps:
            response = self.delete(f"/_sim/apps/{client_id}")
            assert response.status_code in (204, 404), response.text
        self.registered_apps.clear()

    def log_text(self):
        return Path(self.log_path).read_text(errors="replace")

    def request(self, method, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        return self.http.request(method, self.http_url + path, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path, json=None, **kwargs):
        return self.request("PUT", path, json=json, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def __getitem__(self, key):  # sim["http_url"] works too
        return getattr(self, key)


@contextlib.contextmanager
def run_zoomsim(tmp_path, timeout=20.0, **flags):
    tmp_path = Path(tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    ready_file = tmp_path / f"zoomsim-ready-{time.monotonic_ns()}.json"
    log_path = tmp_path / f"zoomsim-{ready_file.stem[14:]}.log"
    argv = [sys.executable, "-m", "zoomsim", "--host", "127.0.0.1", "--port", "0", "--rtms-port", "0",
            "--ready-file", str(ready_file)]
    for name, value in flags.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOOMSIM_")}
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready_file.exists():
            if popen.poll() is not None:
                raise AssertionError(f"zoomsim exited with {popen.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"zoomsim not ready after {timeout} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.02)
        urls = json.loads(ready_file.read_text())
        sim = ZoomSim(popen, urls["http_url"], urls["rtms_url"], log_path)
        try:
            yield sim
        finally:
            sim.http.close()  # an idle keep-alive connection would hold the server's graceful shutdown
    finally:
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGTERM)
            try:
                popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
