"""What the console shows instead of codes: stop reasons, workers, recorded reasons and what a change changed."""

import pytest

from rtms.client.protocol import StopReason
from rtms.models import StreamFailure, stop_reason_label
from zoomapp.consent.models import AuditEntry
from zoomapp.console.display import change_text, readable_reason, worker_label


@pytest.mark.parametrize(("reason", "label"), [
    (6, "Meeting ended (6)"),
    ("6", "Meeting ended (6)"),
    ("MEETING_ENDED", "Meeting ended (6)"),
    (18, "Zoom refused the app's credentials (18)"),
    ("FAILED_NOT_CONNECTED", "Never connected to Zoom's media server"),
    ("FAILED_APP_STREAM_LIMIT", "Refused: the app's stream limit is reached"),
    ("UNKNOWN_99", "Unknown reason (99)"),
    (99, "Unknown reason (99)"),
    (None, ""),
    ("", ""),
    ("something Zoom never said", "something Zoom never said"),
])
def test_a_stop_reason_reads_as_words_with_zoom_s_number(reason, label):
    assert stop_reason_label(reason) == label


def test_every_stop_reason_zoom_and_we_know_has_its_own_label():
    labels = [stop_reason_label(code) for code in StopReason] + [stop_reason_label(f) for f in StreamFailure]
    assert len(set(labels)) == len(StopReason) + len(StreamFailure)
    assert not any("_" in label for label in labels)


def test_a_worker_reads_as_its_process_and_host():
    assert worker_label("web-1.example.com:4242") == "process 4242 on web-1.example.com"
    assert worker_label("bench-holder") == "bench-holder"
    assert worker_label("") == ""


def test_a_recorded_reason_names_stop_reasons_and_people():
    users = {"pAt123": "Pat Participant"}
    assert readable_reason("INTERNAL_EXCEPTION (10): restart 1 of 3", users) == (
        "Zoom internal error (10): restart 1 of 3")
    assert readable_reason("STREAM_CANCELED", users) == "Stream canceled (7)"
    assert readable_reason("REST start with pAt123's token", users) == "REST start with Pat Participant's token"
    assert readable_reason("REST 400: INVALID_TOKEN", users) == "REST 400: INVALID_TOKEN"


@pytest.mark.parametrize(("kind", "detail", "text"), [
    ("set_toggles", {"require_host_approval": False}, "Require host approval: on → off"),
    ("set_toggles", {"share_with_apps": True, "require_host_approval": True},
     "Share real-time meeting content with apps: off → on; Require host approval: off → on"),
    ("sharing_policy_changed", {"account_id": "a1", "level": "user", "target_id": "pAt123", "previous": None,
                                "value": False},
     "Share real-time meeting content with apps for Pat Participant: not set → off"),
    ("auto_start_changed", {"account_id": "a1", "level": "group", "target_id": "sales", "previous": True,
                            "value": None}, "Auto-start for group sales: on → not set"),
    ("auto_start_changed", {"account_id": "a1", "level": "account", "target_id": "a1", "previous": False,
                            "value": True}, "Auto-start for the account: off → on"),
    ("retention_changed", {"account_id": "a1", "previous": None, "value": 7},
     "Media kept: the deployment's default → 7 days"),
    ("approve", {"request": 4}, ""),
])
def test_a_change_row_says_what_changed(kind, detail, text):
    assert change_text(AuditEntry(kind=kind, detail=detail), {"pAt123": "Pat Participant"}) == text
