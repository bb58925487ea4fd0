"""Zoom's RTMS concurrency events end to end (daphne, the simulator): the app-owner account reaches its stream limit
in the simulated Zoom, which sends rtms.concurrency_near_limit and rtms.concurrency_limited; we store both, count
them on /metrics, and show them to the admins of the account that owns the app on the console's Live streams page
(and not to another account's admins)."""

import pytest
import requests

from tests.consent_support import add_sim_user, make_app, register_with_sim
from tests.console_support import sign_in
from tests.processes import wait_for
from zoomapp.webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrency_events_are_stored_counted_and_shown_to_the_owning_accounts_admins(daphne, zoomsim):
    app = make_app("Limited Notes")
    register_with_sim(zoomsim, daphne.url, app, account_id=app.account_id)
    add_sim_user(zoomsim, "ownerOwn", "Otto Owner", account_id=app.account_id, role="owner")
    add_sim_user(zoomsim, "adminElse", "Else Admin", account_id="acctElsewhere", role="admin")
    live = zoomsim.get("/_sim/stats").json()["streams_live"]
    zoomsim.put(f"/_sim/settings/account/{app.account_id}", json={"concurrency_limit": live + 1})
    meeting = zoomsim.post("/_sim/meetings", json={
        "topic": "At the limit", "host": {"name": "Hal", "account_id": app.account_id},
        "participants": [{"name": "Pia"}], "start": True}).json()
    try:
        first = zoomsim.post(f"/_sim/meetings/{meeting['id']}/streams", json={"client_id": app.client_id})
        assert first.status_code == 201, first.text
        refused = zoomsim.post(f"/_sim/meetings/{meeting['id']}/streams", json={"client_id": app.client_id,
                                                                                "key": "p2"})
        assert refused.status_code == 409 and refused.json()["error"] == "concurrency_limited"

        wait_for(lambda: WebhookDelivery.objects.filter(app=app, event__startswith="rtms.concurrency_").count() == 2,
                 what="both concurrency events to be stored")
        stored = {d.event: d.payload for d in WebhookDelivery.objects.filter(app=app,
                                                                              event__startswith="rtms.concurrency_")}
        assert stored["rtms.concurrency_limited"]["concurrency_number"] == live + 1
        assert stored["rtms.concurrency_near_limit"]["id_field"] == "meeting_uuid"

        scraped = requests.get(f"{daphne.url}/metrics", timeout=10).text  # loopback: an operator's address
        assert 'zoom_rtms_concurrency_events_total{event="rtms.concurrency_limited"}' in scraped
        assert (f'zoom_rtms_concurrency_number{{client_id="{app.client_id}",event="rtms.concurrency_limited"}} '
                f'{float(live + 1)}') in scraped

        owner, _ = sign_in(daphne.url, app.client_id, "ownerOwn")
        page = " ".join(owner.get(f"{daphne.url}/console/streams", timeout=10).text.split())
        assert "Zoom's stream limit for your apps" in page
        assert (f"Limited Notes: the limit of concurrent streams is reached ({live + 1}); Zoom starts no new "
                "stream until some stop.") in page
        assert "more than 80 % of the limit of concurrent streams is in use" in page
        elsewhere, _ = sign_in(daphne.url, app.client_id, "adminElse")
        assert "Zoom's stream limit" not in elsewhere.get(f"{daphne.url}/console/streams", timeout=10).text
    finally:
        zoomsim.post(f"/_sim/meetings/{meeting['id']}/end")
        zoomsim.put(f"/_sim/settings/account/{app.account_id}", json={"concurrency_limit": None})
        # The meeting's last webhooks (rtms_stopped, meeting.ended) are answered before the test's tables are
        # flushed: a flush that races their writes deadlocks in PostgreSQL.
        wait_for(lambda: all(d["status"] != "pending" for d in zoomsim.get(
            "/_sim/webhooks", params={"client_id": app.client_id}).json()), what="the meeting's last webhooks")
