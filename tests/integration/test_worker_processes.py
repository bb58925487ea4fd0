"""What an operator running the Celery workers meets: workers of several containers sharing one spool (each
container numbers its processes from 1) all hold streams; a pool process whose session host cannot start does not
stay in the pool looking healthy while holding nothing. Real workers (those "in containers" each in pid and host
name namespaces of their own), this run's PostgreSQL and a Redis namespace of their own."""

import os
import shutil
import subprocess

import pytest

from tests import processes

UNSHARE = shutil.which("unshare")


def _namespaces_available():
    if UNSHARE is None:
        return False
    probe = [UNSHARE, "--user", "--map-root-user", "--pid", "--fork", "--uts", "true"]
    return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0


def _worker_in_container(env, log_dir, hostname):
    """A Celery worker as a container runs it: pid 1 of its own pid namespace, its own host name."""
    celery = [str(processes.VENV_BIN / "celery"), "-A", "zoomapp", "worker", "--pool=prefork", "--concurrency=1",
              "--hostname", f"{hostname}@{hostname}", "--loglevel=INFO", "--without-mingle", "--without-gossip"]
    argv = [UNSHARE, "--user", "--map-root-user", "--pid", "--fork", "--uts", "--kill-child=SIGTERM",
            "sh", "-c", f'hostname {hostname} && exec "$@"', "sh", *celery]
    return processes.Process(hostname, argv, env, log_dir)


@pytest.fixture
def worker_env(stack_env, tmp_path):
    return dict(stack_env, REDIS_NAMESPACE=f"{stack_env.get('REDIS_NAMESPACE', 'zoomapp')}-pools{os.getpid()}",
                RTMS_SPOOL_DIR=str(tmp_path / "shared" / "spool"))


@pytest.mark.skipif(not _namespaces_available(), reason="needs unprivileged user, pid and uts namespaces")
def test_workers_of_two_containers_sharing_one_spool_both_hold_streams(worker_env, tmp_path):
    workers = [_worker_in_container(worker_env, tmp_path, name) for name in ("worker-a", "worker-b")]
    try:
        for worker in workers:
            processes.wait_for(lambda w=worker: "session host started" in w.log_text(), 60,
                               f"{worker.name}'s session host", process=worker)
        spools = {host.name: sorted(p.name for p in host.iterdir() if p.is_dir())
                  for host in (tmp_path / "shared" / "spool").iterdir()}
        assert spools.keys() == {"worker-a", "worker-b"}
        assert spools["worker-a"] == spools["worker-b"]  # one pid in both containers, a spool each
        for worker in workers:
            assert "session host not started" not in worker.log_text()
    finally:
        for worker in workers:
            worker.stop()


def test_a_pool_process_whose_session_host_cannot_start_exits_saying_why(worker_env, tmp_path):
    """It does not stay in the pool holding nothing: it exits, Celery starts another in its place (which holds
    streams if the cause went away), and each says why at level critical."""
    (tmp_path / "not-a-directory").write_text("")
    env = dict(worker_env, RTMS_SPOOL_DIR=str(tmp_path / "not-a-directory" / "spool"))
    argv = [str(processes.VENV_BIN / "celery"), "-A", "zoomapp", "worker", "--pool=prefork", "--concurrency=1",
            "--hostname", "nospool@%h", "--loglevel=INFO", "--without-mingle", "--without-gossip"]
    worker = processes.Process("nospool", argv, env, tmp_path)
    try:
        processes.wait_for(lambda: "exited with 'exitcode 1'" in worker.log_text(), 60, "the pool process to exit")
        log = worker.log_text()
        assert 'level=critical logger=rtms.host msg="session host not started, pool process exits"' in log
        assert "NotADirectoryError" in log and "session host started" not in log
    finally:
        worker.stop()
