"""The stack's plumbing, through real processes: Celery worker, Redis, daphne, /healthz."""

import requests

from tests import processes
from tests.redis_server import PrivateRedis
from zoomapp.health import ping


def test_task_round_trip_through_real_worker(worker):
    result = ping.apply_async()
    hostname = result.get(timeout=20)
    assert hostname  # the worker's host name, computed in the worker process
    processes.wait_for(lambda: result.id in worker.log_text(), 5, "the worker to log the task")


def test_healthz_reports_every_part_healthy(daphne, worker):
    def healthy():
        response = requests.get(f"{daphne.url}/healthz?deep=1", timeout=10)
        return response if response.status_code == 200 else None

    response = processes.wait_for(healthy, 30, "/healthz to report healthy")
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["redis"] == "ok"
    assert body["worker"].startswith("ok (")


def test_healthz_names_redis_when_it_is_unreachable(stack_env, logs_dir, tmp_path):
    redis_server = PrivateRedis(tmp_path).start()
    env = dict(stack_env, REDIS_URL=redis_server.url)
    web = processes.start_daphne(env, tmp_path)
    try:
        redis_server.stop()
        response = requests.get(f"{web.url}/healthz", timeout=15)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        assert "redis" in body["failing"]
        assert body["redis"].startswith("error: ")
        assert body["database"] == "ok"
    finally:
        web.stop()
        redis_server.stop()
