"""The console names people from its own account's rows only (zoomapp/console/account_data.user_names): a name
another account's data holds for the same Zoom user never shows in this account's console."""

import secrets

import pytest
from django.utils import timezone

from tests.consent_support import (
    add_sim_user,
    make_app,
    meeting_uuid,
    register_with_sim,
)
from tests.console_support import sign_in
from zoomapp.consent.models import AuditEntry, Meeting, Participant, Share
from zoomapp.marketplace.models import UserAuthorization

pytestmark = pytest.mark.django_db(transaction=True)


def test_names_come_from_the_accounts_own_rows_only(daphne, zoomsim):
    app = make_app("Notetaker")
    register_with_sim(zoomsim, daphne.url, app)
    tag = secrets.token_hex(3)
    owner, visitor, stranger = f"ownerA{tag}", f"vic{tag}", f"sam{tag}"
    add_sim_user(zoomsim, owner, "Olive Owner", account_id="acctA", role="owner")
    # Account B's data about the same people, under names account A's data never gave them.
    UserAuthorization.objects.create(app=app, user_id=visitor, account_id="acctB", display_name="Vic (B's name)",
                                     access_token="a", refresh_token="r", expires_at=timezone.now())
    meeting_b = Meeting.objects.create(app=app, uuid=meeting_uuid(), topic="B board", account_id="acctB")
    Participant.objects.create(meeting=meeting_b, user_id=stranger, name="Sam (B's name)")
    Share.objects.create(meeting=meeting_b, app=app, user_id=stranger, user_name="Sam (B's share)", status="stopped")
    # Account A's meeting, where Zoom called the visitor "Vic Visitor"; the stranger never joined it.
    meeting_a = Meeting.objects.create(app=app, uuid=meeting_uuid(), topic="A standup", account_id="acctA",
                                       host_user_id=owner)
    Participant.objects.create(meeting=meeting_a, user_id=visitor, name="Vic Visitor")
    for subject in (visitor, stranger):
        AuditEntry.objects.create(kind="request", app=app, meeting_uuid=meeting_a.uuid, account_id="acctA",
                                  actor_user_id=subject,
                                  actor_role="participant", subject_user_id=subject, outcome="pending")

    session, response = sign_in(daphne.url, app.client_id, owner)
    assert response.status_code == 302
    page = session.get(f"{daphne.url}/console/audit", params={"kind": "request"}, timeout=10).text
    assert "Vic Visitor" in page and "A standup" in page
    assert f'<span title="{stranger}">{stranger}</span>' in page  # no name in account A's rows: the id
    assert "B's name" not in page and "B's share" not in page and "B board" not in page
