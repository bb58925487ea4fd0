"""A fleet of worker "nodes" on one machine, for tests/integration/test_fleet.py and bench/fleet.py: each node is
a Celery worker (its own host name, its own spool directory) running one session host; one beat runs the
reconciler; bench/rtms_receive.py's load server plays Zoom's RTMS servers (a 20 ms audio frame per stream and a
transcript line every 5 s). Every node shares one PostgreSQL (the caller's Django database), one Redis namespace
and one media storage.

Who holds a stream is read from its lease (`<worker id>:<token>`, rtms/leases.py); a worker id is
`<host>:<pool process pid>`, mapped to its node by the pool process's parent pid.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import redis

from tests import processes

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID, CLIENT_SECRET = "benchClientId", "benchClientSecret"  # what the load server checks


def _parent_pid(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return None


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


class Fleet:
    def __init__(self, env, workdir, streams, capacity, segment_seconds=5):
        self.workdir = Path(workdir)
        self.streams = streams
        self.capacity = capacity
        self.namespace = f"{env.get('REDIS_NAMESPACE', 'fleet')}-fleet{os.getpid()}"
        self.env = dict(env, REDIS_NAMESPACE=self.namespace, RTMS_ALLOWED_HOSTS="127.0.0.1",
                        RTMS_ALLOW_INSECURE_WS="true", RTMS_LEASE_TTL="1.5", RTMS_RECONCILE_INTERVAL="0.5",
                        RTMS_STREAMS_PER_PROCESS=str(capacity), RTMS_SEGMENT_SECONDS=str(segment_seconds),
                        PYTHONUNBUFFERED="1")
        self.env.setdefault("MEDIA_ROOT", str(self.workdir / "media"))
        self.redis = redis.Redis.from_url(self.env.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        self.nodes = {}  # name -> Process
        self._node_of_pid = {}
        self.server = None
        self.beat = None
        self.stream_ids = []

    # processes ------------------------------------------------------------------------------------------------

    def start(self, node_names=("node-a", "node-b", "node-c")):
        ready_file = self.workdir / "load-server.json"
        self.server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "rtms_receive.py"), "_serve",
                                        "--streams", str(self.streams), "--ready-file", str(ready_file)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.wait_for(ready_file.exists, 30, "the load server")
        self._create_streams(json.loads(ready_file.read_text())["streams"])
        for name in node_names:
            self.start_node(name)
        self.beat = processes.start_beat(self.env, self.workdir)

    def start_node(self, name):
        """Start node `name` (again: the same spool directory, a log of its own), once its host takes streams."""
        env = dict(self.env, RTMS_SPOOL_DIR=str(self.workdir / name / "spool"))
        starts = sum(1 for path in self.workdir.glob(f"{name}*.log"))
        proc = processes.start_worker(env, self.workdir, f"{name}-{starts + 1}" if starts else name)
        processes.wait_for(lambda: "session host started" in proc.log_text(), 30, f"{name}'s session host",
                           process=proc)
        self.nodes[name] = proc
        return proc

    def stop(self):
        for proc in [self.beat, *self.nodes.values()]:
            if proc is not None:
                proc.stop()
        if self.server is not None:
            self.server.terminate()
            self.server.wait(10)

    def _create_streams(self, streams):
        from rtms.models import StreamSession
        from zoomapp.marketplace.models import ZoomApp

        ZoomApp.objects.get_or_create(client_id=CLIENT_ID, defaults={
            "name": "Fleet", "client_secret": CLIENT_SECRET, "webhook_secret_token": "fleet"})
        StreamSession.objects.bulk_create([StreamSession(
            rtms_stream_id=s["rtms_stream_id"], meeting_uuid=s["meeting_uuid"], client_id=CLIENT_ID,
            server_urls=s["server_urls"]) for s in streams])
        self.stream_ids = [s["rtms_stream_id"] for s in streams]

    def forget_streams(self):
        """The fleet's rows go (the database is shared with the rest of the run)."""
        from rtms.models import StreamSession

        StreamSession.objects.filter(rtms_stream_id__in=self.stream_ids).delete()

    # who holds what -------------------------------------------------------------------------------------------

    def node_of(self, worker_id):
        pid = int(worker_id.rsplit(":", 1)[1])
        if pid not in self._node_of_pid:
            parent = _parent_pid(pid)
            node = next((name for name, proc in self.nodes.items() if proc.pid == parent), None)
            if node is None:
                return None
            self._node_of_pid[pid] = node
        return self._node_of_pid[pid]

    def holders(self):
        """{stream_id: worker id holding its lease, or None}."""
        keys = [f"{self.namespace}:rtms:lease:{s}" for s in self.stream_ids]
        return {s: v.decode().rsplit(":", 1)[0] if v else None for s, v in zip(self.stream_ids, self.redis.mget(keys))}

    def per_node(self, holders=None):
        holders = self.holders() if holders is None else holders
        return Counter(self.node_of(w) if w else "nobody" for w in holders.values())

    def per_process(self, holders):
        return Counter(w for w in holders.values() if w)

    def wait_all_held(self, timeout):
        def held():
            holders = self.holders()
            return all(holders.values()) and holders
        return processes.wait_for(held, timeout, f"all {self.streams} streams to be held", interval=0.2)

    def takeover(self, victim, sig, timeout=30):
        """Signal node `victim`; returns ({stream_id: seconds until another node holds it}, the most streams one
        process held meanwhile). SIGKILL takes the whole process group down at once, as a machine failing."""
        holders = self.holders()
        moving = {s for s, w in holders.items() if w and self.node_of(w) == victim}
        for worker in set(holders.values()):
            self.node_of(worker)  # remembered before the victim's processes are gone
        self.victim_workers = {w for w in holders.values() if w and self.node_of(w) == victim}
        proc = self.nodes[victim]
        started = time.monotonic()
        os.killpg(proc.pid, sig)
        held_again, peak = {}, 0
        while len(held_again) < len(moving) and time.monotonic() - started < timeout:
            holders = self.holders()
            elapsed = time.monotonic() - started
            peak = max([peak, *self.per_process(holders).values()])
            for stream_id in moving - held_again.keys():
                worker = holders[stream_id]
                if worker and self.node_of(worker) not in (None, victim):
                    held_again[stream_id] = elapsed
            time.sleep(0.05)
        if sig == signal.SIGTERM:
            proc.popen.wait(30)
        return {s: held_again.get(s) for s in moving}, peak

    # what was stored ------------------------------------------------------------------------------------------

    def audio_segments(self):
        """{stream_id: [MediaFile, ...]} of mixed audio, in timestamp order."""
        from rtms.models import MediaFile

        segments = {s: [] for s in self.stream_ids}
        for media_file in MediaFile.objects.filter(stream__rtms_stream_id__in=self.stream_ids, kind="audio_mixed") \
                .select_related("stream").order_by("first_timestamp"):
            segments[media_file.stream.rtms_stream_id].append(media_file)
        return segments

    def log_text(self):
        return "".join(proc.log_text() for proc in self.nodes.values())

    def not_stored(self):
        """Why audio is missing from storage, for a failure message: each segment indexed as not stored (its
        writer's node, its path, whether a spool still has it) and the nodes' log lines about uploads."""
        from rtms.models import MediaFile

        spooled = {path.relative_to(spool).as_posix(): node
                   for node in self.nodes for spool in (self.workdir / node / "spool").glob("*/p*") if spool.is_dir()
                   for path in spool.rglob("*.wav")}
        rows = MediaFile.objects.filter(stream__rtms_stream_id__in=self.stream_ids, stored=False)
        lines = [f"{row.path} written by {row.node} ({self.node_of(row.node) if ':' in row.node else '?'}), "
                 f"in the spool of {spooled.get(row.path, 'no node')}" for row in rows]
        logged = [line for line in self.log_text().splitlines()
                  if "not uploaded" in line or "handover incomplete" in line or "spool" in line]
        return "\n".join([f"{len(lines)} segments not stored:", *lines[:20], "log:", *logged[-20:]])


def audio_gap(segments, victim_workers):
    """Seconds of a stream's audio that no holder stored at its takeover: from the last frame the processes in
    `victim_workers` stored to the first frame of the next segment (the load server's clock: what was sent while
    nobody held the stream, since this load server does not replay)."""
    last = max((s.last_timestamp for s in segments if s.node in victim_workers), default=None)
    later = [s.first_timestamp for s in segments if last is not None and s.first_timestamp > last]
    return (min(later) - last - 20) / 1000 if later else None


def audio_defects(segments):
    """For one stream's segments in order: (frames missing inside segments, segments overlapping the next)."""
    holes = sum((s.last_timestamp - s.first_timestamp) // 20 + 1 - s.frames for s in segments)
    overlaps = sum(1 for a, b in pairwise(segments) if b.first_timestamp <= a.last_timestamp)
    return holes, overlaps


def load_average():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
