"""Real subprocesses for integration tests: daphne, Celery workers, beat.

Each process gets its own log file under the test's temporary directory; when a wait
times out, the error includes the tail of that log so a failure explains itself.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=20.0, what="condition", interval=0.05, process=None):
    """Poll `predicate` until it returns a truthy value; fail with `what` (and a log tail)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
            last_error = exc
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"{process.name} exited with {process.poll()} while waiting for {what}\n{process.tail()}")
        time.sleep(interval)
    detail = f" (last error: {last_error!r})" if last_error else ""
    tail = f"\n{process.tail()}" if process is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}{tail}")


def streams_at_rest(streams):
    """Whether every stream of a StreamSession queryset is stopped and let go by its holder: the holder writes the
    stream's last media rows after "stopped" and releases its lease only then (rtms/host.py), so a test's database
    flush waits for the release, not for "stopped", or races those writes."""
    from rtms import leases

    if streams.exclude(state="stopped").exists():
        return False
    return not any(leases.holders(streams.values_list("rtms_stream_id", flat=True)).values())


class Process:
    def __init__(self, name, argv, env, log_dir):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        # PGAPPNAME names the process in pg_stat_activity: who holds which PostgreSQL connections during a run.
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, env={**env, "PGAPPNAME": f"test-{name}"}, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self):
        return self.popen.pid

    def poll(self):
        return self.popen.poll()

    def tail(self, lines=40):
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(text[-lines:])

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def kill(self, sig=signal.SIGKILL):
        """Signal the whole process group (a prefork worker's children too)."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout=15):
        """SIGTERM to the process itself, as an operator stops it: a Celery worker then shuts its pool processes
        down the graceful way (the session host leaves its streams, coverage saves each process's data). Whatever
        of its group is still running after `timeout` is killed."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        with contextlib.suppress(ProcessLookupError):  # nothing of the group is left
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self._log.close()


def start_daphne(env, log_dir, name="daphne"):
    port = free_port()
    # As deployed (Procfile): no access log, whose lines would carry OAuth codes and are not logfmt.
    argv = [str(VENV_BIN / "daphne"), "-v", "0", "-b", "127.0.0.1", "-p", str(port), "zoomapp.asgi:application"]
    proc = Process(name, argv, env, log_dir)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{url}/healthz", timeout=2).status_code in (200, 503), 30, "daphne to answer",
             process=proc)
    proc.url = url
    return proc


def start_worker(env, log_dir, name="worker1", concurrency=1):
    proc = Process(
        name,
        [
            str(VENV_BIN / "celery"), "-A", "zoomapp", "worker", "--pool=prefork", f"--concurrency={concurrency}",
            "--hostname", f"{name}@%h", "--loglevel=INFO", "--without-mingle", "--without-gossip",
        ],
        env,
        log_dir,
    )
    wait_for(lambda: "ready." in proc.log_text(), 30, f"{name} to be ready", process=proc)
    return proc


def start_beat(env, log_dir):
    schedule = Path(log_dir) / "celerybeat-schedule"
    argv = [str(VENV_BIN / "celery"), "-A", "zoomapp", "beat", "--loglevel=INFO", "-s", str(schedule)]
    return Process("beat", argv, env, log_dir)
