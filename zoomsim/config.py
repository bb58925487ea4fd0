"""Command-line flags and ZOOMSIM_* environment variables (flags win)."""

import argparse
import os
import shutil
from dataclasses import dataclass


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 9100
    rtms_port: int = 9101
    public_host: str = ""
    clock_scale: float = 1.0
    retry_scale: float = 1.0
    keepalive_interval: float = 10.0
    reconnect_scale: float = 1.0
    token_ttl: float = 3600.0
    webhook_timeout: float = 3.0
    max_catchup: float = 1.0
    voice: str = ""
    ready_file: str = ""
    apps_file: str = ""
    script: str = ""
    log_level: str = "INFO"

    @property
    def url_host(self):
        return self.public_host or self.host


_FLAGS = [
    # name, type, help
    ("host", str, "listen address"),
    ("port", int, "HTTP port (0 = free port)"),
    ("rtms_port", int, "RTMS WebSocket port (0 = free port)"),
    ("public_host", str, "host name used in URLs handed to clients"),
    ("clock_scale", float, "simulated time runs this many times faster"),
    ("retry_scale", float, "multiplier for webhook retry delays"),
    ("keepalive_interval", float, "seconds between RTMS keep-alive requests"),
    ("reconnect_scale", float, "multiplier for RTMS reconnection windows"),
    ("token_ttl", float, "OAuth access token lifetime in seconds"),
    ("webhook_timeout", float, "seconds a webhook endpoint has to answer"),
    ("max_catchup", float, "when the simulator falls this many seconds behind, skip frames instead of catching up"),
    ("voice", str, "espeak or tones"),
    ("ready_file", str, "write the listening URLs here as JSON"),
    ("apps_file", str, "JSON list of app registrations to load at start"),
    ("script", str, "scripted meeting JSON file to run"),
    ("log_level", str, "logging level"),
]


def parse_config(argv=None):
    defaults = Config()
    parser = argparse.ArgumentParser(prog="python -m zoomsim", description="Local Zoom platform simulator")
    for name, kind, help_text in _FLAGS:
        env_value = os.environ.get("ZOOMSIM_" + name.upper())
        default = kind(env_value) if env_value not in (None, "") else getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=default, help=help_text)
    config = Config(**vars(parser.parse_args(argv)))
    if not config.voice:
        config.voice = "espeak" if shutil.which("espeak-ng") else "tones"
    return config
