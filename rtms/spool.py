"""Each worker process's spool: the local directory its open segments are written to before they are uploaded
to storage (rtms/sinks.py StreamFiles). `RTMS_SPOOL_DIR/p<pid>/`, locked (flock) for as long as the process
lives, so a process starting on the same node can tell the spool of one that died (kill -9, a crash: the
kernel drops its lock) from one still writing, and upload what it left (`rtms.sinks.recover_spool`).
"""

import fcntl
import os
import shutil
import socket
from pathlib import Path


def open_process_spool(root):
    """This process's spool directory, locked; returns (directory, lock file) — keep the lock file open."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    directory = root / f"p{os.getpid()}"
    lock = open(root / f"p{os.getpid()}.lock", "w")  # noqa: SIM115 - held for the life of the process
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    if directory.exists():  # a dead process had this pid: its segments are recovered like any other's
        directory.rename(root / f"p{os.getpid()}-{os.urandom(4).hex()}")
    directory.mkdir()
    return directory, lock


def abandoned(root):
    """The spool directories of this node's processes that are gone (their lock is free), each locked by us
    while it is yielded."""
    root = Path(root)
    if not root.exists():
        return
    mine = f"p{os.getpid()}"
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and p.name != mine):
        lock_path = root / f"{directory.name.split('-')[0]}.lock"
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process of this node
            yield directory


def writer_of(directory):
    """The worker id (rtms/host.py: `<host>:<pid>`) of the process that wrote a spool directory of this node."""
    return f"{socket.gethostname()}:{Path(directory).name.split('-')[0].removeprefix('p')}"


def discard(directory):
    shutil.rmtree(directory, ignore_errors=True)
