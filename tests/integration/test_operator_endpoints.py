"""/metrics and /healthz?deep=1 are for operators; plain /healthz stays public for load balancers, without details.

Against daphne: the session's (OPERATOR_NETWORKS at its loopback default, no token) and one configured as a
deployment reached from outside (a token, networks that do not include this machine's address).
"""

import secrets

import pytest
import requests

from tests import processes

TOKEN = secrets.token_urlsafe(50)


@pytest.fixture(scope="module")
def guarded_web(stack_env, tmp_path_factory):
    env = dict(stack_env, OPERATOR_TOKEN=TOKEN, OPERATOR_NETWORKS="192.0.2.0/24,2001:db8::/32")
    web = processes.start_daphne(env, tmp_path_factory.mktemp("guarded-web"))
    yield web
    web.stop()


def test_from_outside_the_operator_networks_metrics_and_deep_health_are_refused(guarded_web):
    for path in ("/metrics", "/healthz?deep=1"):
        response = requests.get(guarded_web.url + path, timeout=10)
        assert response.status_code == 403, path
        body = response.json()
        assert body["error"] == "operators_only"
        assert "OPERATOR_TOKEN" in body["message"] and "OPERATOR_NETWORKS" in body["message"]
        assert "rtms_" not in response.text and "worker" not in body  # no metric, no check ran


def test_a_wrong_or_malformed_token_is_refused_with_401(guarded_web):
    for authorization in (f"Bearer {TOKEN[:-1]}x", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}{TOKEN}"):
        response = requests.get(f"{guarded_web.url}/metrics", headers={"Authorization": authorization}, timeout=10)
        assert response.status_code == 401, authorization
        assert response.json()["error"] == "bad_operator_token"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in response.text


def test_the_operator_token_opens_metrics_and_deep_health(guarded_web, worker, beat):
    operator = {"Authorization": f"Bearer {TOKEN}"}
    metrics = requests.get(f"{guarded_web.url}/metrics", headers=operator, timeout=10)
    assert metrics.status_code == 200 and "process_cpu_seconds_total" in metrics.text

    def deep_health():
        response = requests.get(f"{guarded_web.url}/healthz?deep=1", headers=operator, timeout=15)
        return response if response.status_code == 200 else None

    body = processes.wait_for(deep_health, 30, "deep health with the operator token").json()
    assert body["worker"].startswith("ok (") and "task answered by" in body["worker"]


def test_public_health_says_which_part_fails_but_never_why(guarded_web):
    """Plain /healthz is the load balancer's: this web process's own parts, each "ok" or "error" (a wrong
    FIELD_ENCRYPTION_KEY, the detail for operators only: tests/integration/test_operator_mistakes.py)."""
    public = requests.get(f"{guarded_web.url}/healthz", timeout=15)
    assert public.status_code == 200
    assert public.json() == {"status": "ok", "database": "ok", "secrets": "ok"}
    operator = requests.get(f"{guarded_web.url}/healthz", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15)
    assert operator.json()["database"] == "ok" and operator.json()["secrets"].startswith("ok")


def test_loopback_passes_by_default_but_not_through_a_proxy(daphne):
    assert requests.get(f"{daphne.url}/metrics", timeout=10).status_code == 200
    # A proxy on the same host makes every Internet client arrive from 127.0.0.1; its forwarding header gives it away.
    for header in ({"X-Forwarded-For": "203.0.113.9"}, {"X-Real-IP": "203.0.113.9"},
                   {"Forwarded": "for=203.0.113.9"}):
        refused = requests.get(f"{daphne.url}/metrics", headers=header, timeout=10)
        assert refused.status_code == 403 and refused.json()["error"] == "operators_only", header
    assert requests.get(f"{daphne.url}/healthz?deep=1", headers={"X-Forwarded-For": "203.0.113.9"},
                        timeout=10).status_code == 403
