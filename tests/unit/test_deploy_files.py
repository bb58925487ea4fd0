"""The deployment files start the web process one way: docker-compose.yml, the Dockerfile and the Procfile give
daphne the same arguments (no access log: tests/integration/test_operator_mistakes.py starts the Procfile's), and
compose publishes it on this machine only, behind the TLS proxy."""

import json
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The web service's block: from "  web:" to the next service (no YAML parser among the dependencies).
COMPOSE_WEB = re.search(r"^  web:\n(.*?)^  \w+:\n", (ROOT / "docker-compose.yml").read_text(), re.M | re.S).group(1)


def procfile_web():
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    return shlex.split(line.removeprefix("web:").replace("${PORT:-8000}", "8000"))


def dockerfile_cmd():
    return json.loads(re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M).group(1))


def test_compose_the_image_and_the_procfile_start_daphne_alike_without_its_access_log():
    command = json.loads(re.search(r"^    command: (\[.*\])$", COMPOSE_WEB, re.M).group(1))
    assert command == dockerfile_cmd() == procfile_web()
    assert command[:3] == ["daphne", "-v", "0"] and "--access-log" not in command


def test_compose_publishes_the_web_port_on_loopback_only():
    ports = re.search(r"^    ports:\n((?:      .*\n)+)", COMPOSE_WEB, re.M).group(1)
    assert [line.strip() for line in ports.splitlines() if not line.strip().startswith("#")] == [
        '- "127.0.0.1:8000:8000"']


def test_compose_health_check_asks_the_web_process_readiness_not_the_deep_check():
    probe = re.search(r"^      test: (.*)$", COMPOSE_WEB, re.M).group(1)
    assert "http://127.0.0.1:8000/healthz'" in probe and "deep" not in probe
