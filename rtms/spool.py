"""Each worker process's spool: the directory its open segments are written to before they are uploaded to
storage (rtms/sinks.py StreamFiles). `RTMS_SPOOL_DIR/<host>/p<pid>/`, named as the session host is
(`<host>:<pid>`, rtms/host.py), so processes of several containers or machines sharing one RTMS_SPOOL_DIR (each
container numbers its processes from 1) never take the same one. It is locked (flock) for as long as the process
lives, so another process can tell the spool of one that died (kill -9, a crash: the kernel drops its lock) from
one still writing, and upload what it left (`rtms.sinks.recover_spool`).

A lock tells the truth between processes of one kernel (one machine, its containers included); across machines on
a network filesystem it may not (a mount with local locks). So a spool of another host is taken as abandoned only
once its writer has also stopped saying it is alive in Redis (`keep_alive`, from its lease renewal thread) for
OWNER_SILENT_TTLS lease ttls, as placement forgets a silent process (docs/ARCHITECTURE.md, "Media any node can
reach")."""

import fcntl
import os
import shutil
import socket
from pathlib import Path

from django.conf import settings
from redis.exceptions import RedisError

from rtms.redis_connection import key, redis_client

OWNER_SILENT_TTLS = 4  # lease ttls without a word from a spool's writer before another host takes its spool


def _host_dir(root, host=None):
    return Path(root) / (host or socket.gethostname())


def open_process_spool(root):
    """This process's spool directory, locked; returns (directory, lock file) — keep the lock file open."""
    parent = _host_dir(root)
    parent.mkdir(parents=True, exist_ok=True)
    directory = parent / f"p{os.getpid()}"
    lock = open(parent / f"p{os.getpid()}.lock", "w")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise
    if directory.exists():  # a dead process of this host had this pid: its segments are recovered like any other's
        directory.rename(parent / f"p{os.getpid()}-{os.urandom(4).hex()}")
    directory.mkdir()
    return directory, lock


def _owner_key(worker_id):
    return key("rtms", "spool-writer", worker_id)


def keep_alive(worker_id, client):
    """The writer `worker_id` (`<host>:<pid>`) is alive: its spool is not another host's to recover."""
    client.set(_owner_key(worker_id), 1, px=int(settings.RTMS_LEASE_TTL * OWNER_SILENT_TTLS * 1000))


def _writer_alive(worker_id):
    try:
        return bool(redis_client().exists(_owner_key(worker_id)))
    except RedisError:  # not known to be gone: left for a later look
        return True


def abandoned(root):
    """The spool directories whose process is gone, each locked by us while it is yielded: their lock is free, and
    for another host's, their writer has also gone silent in Redis (Redis unreachable: none of those)."""
    root = Path(root)
    if not root.exists():
        return
    here = socket.gethostname()
    mine = _host_dir(root) / f"p{os.getpid()}"
    for host_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for directory in sorted(p for p in host_dir.iterdir() if p.is_dir() and p != mine):
            if host_dir.name != here and _writer_alive(writer_of(directory)):
                continue
            with open(host_dir / f"{directory.name.split('-')[0]}.lock", "a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive
                yield directory


def writer_of(directory):
    """The worker id (rtms/host.py: `<host>:<pid>`) of the process that wrote a spool directory."""
    directory = Path(directory)
    return f"{directory.parent.name}:{directory.name.split('-')[0].removeprefix('p')}"


def discard(directory):
    shutil.rmtree(directory, ignore_errors=True)
