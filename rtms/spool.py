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

import contextlib
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
    """This process's spool directory, locked; returns (directory, lock files) — keep the lock files open.
    Besides its own lock, it shares one on `root/<host>.lock`: a worker of before spools were kept per host, still
    running in a rolling deploy, takes an unlocked `root/<name>` for a dead process's spool and would delete it."""
    parent = _host_dir(root)
    parent.parent.mkdir(parents=True, exist_ok=True)
    host_lock = open(Path(root) / f"{parent.name}.lock", "a")  # noqa: SIM115 - held for the life of the process
    fcntl.flock(host_lock, fcntl.LOCK_SH)  # shared by this host's processes; waits out an old worker's look
    parent.mkdir(exist_ok=True)
    directory = parent / f"p{os.getpid()}"
    lock = open(parent / f"p{os.getpid()}.lock", "w")  # noqa: SIM115 - likewise
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        host_lock.close()
        raise
    if directory.exists():  # a dead process of this host had this pid: its segments are recovered like any other's
        directory.rename(parent / f"p{os.getpid()}-{os.urandom(4).hex()}")
    directory.mkdir()
    return directory, (lock, host_lock)


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


def _is_spool_name(name):
    """`p<pid>`, or `p<pid>-<hex>` once renamed for a new process with its pid (open_process_spool)."""
    pid, _, suffix = name.partition("-")
    return pid[:1] == "p" and pid[1:].isdigit() and all(c in "0123456789abcdef" for c in suffix)


def _spools(root):
    """(spool directory, its lock file, its writer's host) of every spool under `root`. Before spools were kept
    per host, a process's spool was `root/p<pid>/` (lock `root/p<pid>.lock`), always of this host: one left by a
    process that stopped on an upgrade, or still written by an old worker of a rolling deploy, is this host's
    like any other. Every other directory under `root` is a host's; what is neither is not ours to touch."""
    here = socket.gethostname()
    for entry in sorted(p for p in root.iterdir() if p.is_dir()):
        if entry.name != here and _is_spool_name(entry.name):
            yield entry, root / f"{entry.name.split('-')[0]}.lock", here
            continue
        for directory in sorted(p for p in entry.iterdir() if p.is_dir() and _is_spool_name(p.name)):
            yield directory, entry / f"{directory.name.split('-')[0]}.lock", entry.name


def abandoned(root):
    """(directory, writer) of the spools whose process is gone, each locked by us while it is yielded: their lock
    is free, and for another host's, their writer has also gone silent in Redis (Redis unreachable: none of
    those). `writer` is its process's worker id (rtms/host.py: `<host>:<pid>`)."""
    root = Path(root)
    if not root.exists():
        return
    here = socket.gethostname()
    mine = _host_dir(root) / f"p{os.getpid()}"
    for directory, lock_path, host in _spools(root):
        if directory == mine:
            continue
        writer = f"{host}:{directory.name.split('-')[0].removeprefix('p')}"
        if host != here and _writer_alive(writer):
            continue
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive
            yield directory, writer


def discard(directory):
    """A recovered spool, once its streams' segments are uploaded: its `rtms/` tree goes, and the directory if
    nothing else is in it (what a spool does not hold is left where it is)."""
    shutil.rmtree(Path(directory) / "rtms", ignore_errors=True)
    with contextlib.suppress(OSError):
        Path(directory).rmdir()
