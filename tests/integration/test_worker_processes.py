"""What an operator running the Celery workers meets: workers of several containers sharing one spool (each
container numbers its processes from 1) all hold streams; a pool process whose session host cannot start does not
stay in the pool looking healthy while holding nothing; streams whose worker died are placed again while long
tasks hold every pool slot; each pool process serves the workers' metrics where a Prometheus elsewhere reaches
them, and the web's /metrics has none of them. Real workers (those "in containers" each in pid and host
name namespaces of their own), this run's PostgreSQL and a Redis namespace of their own."""

import os
import re
import secrets
import shutil
import socket
import subprocess
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from rtms.models import StreamSession
from tests import processes
from tests.locks_support import blocked_on_a_lock, held_elsewhere

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
                  for host in (tmp_path / "shared" / "spool").iterdir() if host.is_dir()}
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


@pytest.mark.django_db(transaction=True)
def test_streams_are_placed_again_while_long_tasks_hold_every_pool_slot(worker_env, tmp_path, settings):
    """Failover does not queue behind the purges: with both pool slots of the worker in retention purges that run
    for minutes (here: waiting on a row lock), a running stream nobody holds (its worker died) is placed and
    claimed within a few reconciler ticks."""
    env = dict(worker_env, RTMS_RECONCILE_INTERVAL="0.5", MEDIA_RETENTION_DAYS="1")
    settings.REDIS_NAMESPACE = env["REDIS_NAMESPACE"]
    expired = StreamSession.objects.create(
        rtms_stream_id=secrets.token_hex(16), meeting_uuid="expired==", client_id="app", state="stopped",
        desired_state="stopped", stopped_at=timezone.now() - timedelta(days=3))
    worker = processes.start_worker(env, tmp_path, "busy", concurrency=2)
    beat = None
    try:
        with held_elsewhere(lambda: StreamSession.objects.select_for_update().get(pk=expired.pk), seconds=90):
            for _ in range(2):  # both slots: each purge waits for the row it erases
                subprocess.run([str(processes.VENV_BIN / "celery"), "-A", "zoomapp", "call",
                                "rtms.purge_expired_media"], env=env, check=True, capture_output=True, timeout=60)
            processes.wait_for(lambda: blocked_on_a_lock(2), 60, "two purges waiting", process=worker)
            orphan = StreamSession.objects.create(rtms_stream_id=secrets.token_hex(16), meeting_uuid="orphan==",
                                                  client_id="app", server_urls="ws://127.0.0.1:9/")
            beat = processes.start_beat(env, tmp_path)

            def claimed():
                orphan.refresh_from_db()
                return orphan.connect_claims >= 1

            processes.wait_for(claimed, 60, "the orphaned stream to be claimed", process=beat)
            assert blocked_on_a_lock(2)  # the purges still hold both slots
    finally:
        if beat is not None:
            beat.stop()
        worker.stop()


def _private_address():
    """This machine's address on its network (not loopback), as a Prometheus on another host would reach it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: it only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_each_pool_process_serves_the_workers_metrics_where_prometheus_can_reach_them(worker_env, tmp_path,
                                                                                       daphne):
    address = _private_address()
    if address is None:
        pytest.skip("no network address besides loopback")
    port = processes.free_port()
    env = dict(worker_env, RTMS_METRICS_PORT=str(port), RTMS_METRICS_ADDR="0.0.0.0")
    worker = processes.start_worker(env, tmp_path, "scraped", concurrency=2)
    try:
        # One per pool process, each on the first port free from RTMS_METRICS_PORT up (another program may hold one).
        def endpoints():
            found = re.findall(r'msg="worker metrics endpoint" address=0\.0\.0\.0 port=(\d+)', worker.log_text())
            return sorted(map(int, found)) if len(found) == 2 else None

        served = processes.wait_for(endpoints, 30, "both pool processes' metrics endpoints", process=worker)
        assert served[0] == port and served[1] > port
        pages = [requests.get(f"http://{address}:{p}/metrics", timeout=5).text for p in served]
        for page in pages:
            assert "rtms_media_write_failures_total 0.0" in page and "rtms_streams_held 0.0" in page
            assert "process_resident_memory_bytes" in page
            assert "zoom_webhook_deliveries" not in page  # the web's, never counted here
    finally:
        worker.stop()
    web = requests.get(f"{daphne.url}/metrics", timeout=10).text
    assert "zoom_webhook_handling_seconds" in web and "rtms_streams_waiting_for_capacity" in web
    for workers_only in ("rtms_media_write_failures", "rtms_streams_held", "rtms_lease_losses", "rtms_reconnects"):
        assert workers_only not in web  # it would read 0 there for good
