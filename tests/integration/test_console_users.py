"""The console's sharing and auto-start pages for an account of many users: a page of users at a time, found by
name or id, read from the database a page at a time, each user's effective settings computed from the rows that
can apply to the page's users, read once.

The pages run in this process (Django's test client, the real views, middleware and templates, in an owner's
session signed in through the simulator's OAuth) so that the queries of one request can be counted: the number
must not grow with the number of users (an account of a few thousand users took the pages past a proxy's 60 s
timeout).
"""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.consent_support import add_sim_user, make_app, register_with_sim
from tests.console_support import sign_in
from zoomapp.consent import autostart, policy
from zoomapp.consent.models import AuditEntry, SharingPolicy
from zoomapp.console.models import AutoStartSetting
from zoomapp.console.paging import USERS_PER_PAGE
from zoomapp.marketplace.models import UserAuthorization

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT, OWNER = "acctMany", "zoeMany"
PAGES = ("/console/sharing", "/console/auto-start")
TABLES = {"/console/sharing": "user-settings", "/console/auto-start": "auto-start-effective"}


@pytest.fixture
def apps(daphne, zoomsim):
    notetaker, recorder = make_app("Notetaker"), make_app("Recorder")
    register_with_sim(zoomsim, daphne.url, notetaker)
    return notetaker, recorder


@pytest.fixture
def owner(daphne, zoomsim, apps):
    """Zoe, the account's owner, signed in through Zoom's OAuth (the simulator's) against daphne; her session,
    which lives in the database, then used by this process's test client. She is the account's last user by name."""
    add_sim_user(zoomsim, OWNER, "Zoe Owner", account_id=ACCOUNT, role="owner")
    session, response = sign_in(daphne.url, apps[0].client_id, OWNER)
    assert response.status_code == 302
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies[settings.SESSION_COOKIE_NAME] = session.cookies[settings.SESSION_COOKIE_NAME]
    return client


def add_users(apps, first, count):
    """Users `first`.. of the account, in groups g0–g4, each with a sharing and an auto-start row of their own
    for every third user (and the account's and groups' rows, once)."""
    expires = timezone.now() + timedelta(hours=1)
    numbers = range(first, first + count)
    UserAuthorization.objects.bulk_create([
        UserAuthorization(app=apps[i % 2], user_id=f"u{i:04d}", account_id=ACCOUNT, group_ids=[f"g{i % 5}"],
                          role_name="Member", display_name=f"Person {i:04d}", access_token="a", refresh_token="r",
                          expires_at=expires) for i in numbers])
    SharingPolicy.objects.bulk_create([SharingPolicy(account_id=ACCOUNT, level="user", target_id=f"u{i:04d}",
                                                     share_with_apps=i % 2 == 0) for i in numbers if i % 3 == 0])
    AutoStartSetting.objects.bulk_create([AutoStartSetting(account_id=ACCOUNT, level="user", target_id=f"u{i:04d}",
                                                           app=app, auto_start=i % 2 == 1)
                                          for app in apps for i in numbers if i % 3 == 0])
    if first == 0:
        SharingPolicy.objects.create(account_id=ACCOUNT, level="account", target_id=ACCOUNT, share_with_apps=False)
        SharingPolicy.objects.create(account_id=ACCOUNT, level="group", target_id="g1", share_with_apps=True)
        AutoStartSetting.objects.create(account_id=ACCOUNT, level="group", target_id="g2", app=apps[0],
                                        auto_start=True)


def get(client, path, **query):
    return client.get(path, query, secure=True)


def listed_users(response, page):
    table = response.content.decode().split(f'data-testid="{TABLES[page]}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-user="([^"]+)"', table)


def queries_of(client, page):
    with CaptureQueriesContext(connection) as queries:
        assert get(client, page).status_code == 200
    return len(queries)


def test_the_pages_read_as_many_queries_for_three_hundred_users_as_for_ten(owner, apps):
    add_users(apps, 0, 10)
    few = {page: queries_of(owner, page) for page in PAGES}
    add_users(apps, 10, 290)
    many = {page: queries_of(owner, page) for page in PAGES}
    assert many == few
    assert max(many.values()) <= 20


def rows_read(client, path, **query):
    """The response to one request of a page, and the number of rows each of its queries returned."""
    returned = []

    def count_rows(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        returned.append((sql, context["cursor"].rowcount))
        return result

    with connection.execute_wrapper(count_rows):
        response = get(client, path, **query)
    assert response.status_code == 200
    return response, returned


def test_a_page_of_a_large_account_reads_only_its_own_users(owner, apps):
    """500 users: each page, search and page link as for a few, from as many queries, none reading more than a
    page of users (every user's grant and name were read to sort and search them in memory)."""
    add_users(apps, 0, 10)
    few = {page: len(rows_read(owner, page)[1]) for page in PAGES}
    add_users(apps, 10, 490)
    # The auto-start page has a table of every group and user setting, by name: its rows, and its users' names, are
    # the only reads of more than a page.
    overrides = AutoStartSetting.objects.filter(account_id=ACCOUNT)
    listing = {"/console/sharing": set(), "/console/auto-start": {
        overrides.count(), overrides.filter(level="user").values("target_id").distinct().count()}}
    for page in PAGES:
        first, returned = rows_read(owner, page)
        assert listed_users(first, page) == [f"u{i:04d}" for i in range(USERS_PER_PAGE)]
        assert "501 users: page 1 of 6." in first.content.decode()
        assert f'href="{page}?page=2" rel="next"' in first.content.decode()
        assert len(returned) == few[page]
        assert {rows for sql, rows in returned if rows > USERS_PER_PAGE} <= listing[page]

        third, returned = rows_read(owner, page, page="3")
        assert listed_users(third, page) == [f"u{i:04d}" for i in range(2 * USERS_PER_PAGE, 3 * USERS_PER_PAGE)]
        assert f'href="{page}?page=4" rel="next"' in third.content.decode()
        assert len(returned) == few[page]

        found, returned = rows_read(owner, page, q="PERSON 04")
        assert listed_users(found, page) == [f"u{i:04d}" for i in range(400, 500)]
        assert "100 users whose name or id contains “PERSON 04”." in found.content.decode()
        assert 'rel="next"' not in found.content.decode()
        assert len(returned) == few[page]
        assert listed_users(rows_read(owner, page, q="u0317")[0], page) == ["u0317"]
        assert listed_users(rows_read(owner, page, q="zoe")[0], page) == [OWNER]
        wide = rows_read(owner, page, q="Person 0", page="5")[0]
        assert listed_users(wide, page) == [f"u{i:04d}" for i in range(400, 500)]
        assert f'href="{page}?q=Person+0&amp;page=4" rel="prev"' in wide.content.decode()


def test_each_user_is_shown_the_setting_rule_1_and_auto_start_apply_to_them(owner, apps):
    """The console computes every user's setting from the account's rows read once; the per-meeting checks read
    one user's rows: both through the one precedence rule, so they agree on every kind of user."""
    add_users(apps, 0, 30)
    sharing = get(owner, "/console/sharing").content.decode()
    auto_start = get(owner, "/console/auto-start").content.decode()
    sources = set()
    for i in range(30):
        user_id, group = f"u{i:04d}", [f"g{i % 5}"]
        expected = policy.effective_sharing_policy(ACCOUNT, user_id, group)
        row = sharing.split(f'<tr data-user="{user_id}">', 1)[1].split("</tr>", 1)[0]
        assert f'data-effective="{"on" if expected.share_with_apps else "off"}"' in row
        assert f'data-source="{expected.level}"' in row
        sources.add(expected.level)
        row = auto_start.split(f'<tr data-user="{user_id}">', 1)[1].split("</tr>", 1)[0]
        for app in apps:
            expected = autostart.effective_auto_start(ACCOUNT, user_id, group, app)
            assert (f'data-app="{app.client_id}" data-effective="{"on" if expected.on else "off"}" '
                    f'data-source="{expected.level}"') in row
            sources.add(expected.level)
    assert sources == {"user", "group", "account", "default"}


def test_users_come_a_page_at_a_time_with_links_to_the_next_and_previous(owner, apps):
    add_users(apps, 0, 2 * USERS_PER_PAGE + 30)
    for page in PAGES:
        first = get(owner, page)
        assert listed_users(first, page) == [f"u{i:04d}" for i in range(USERS_PER_PAGE)]
        assert "231 users: page 1 of 3." in first.content.decode()
        assert f'href="{page}?page=2" rel="next"' in first.content.decode()
        last = get(owner, page, page="3")
        assert listed_users(last, page) == [f"u{i:04d}" for i in range(2 * USERS_PER_PAGE, 230)] + [OWNER]
        assert f'href="{page}?page=2" rel="prev"' in last.content.decode()
        assert 'rel="next"' not in last.content.decode()


def test_users_are_found_by_a_part_of_their_name_or_id_in_any_case(owner, apps):
    add_users(apps, 0, 230)
    for page in PAGES:
        by_name = get(owner, page, q="person 012")
        assert listed_users(by_name, page) == [f"u{i:04d}" for i in range(120, 130)]
        assert "10 users whose name or id contains “person 012”." in by_name.content.decode()
        assert listed_users(get(owner, page, q="U0199"), page) == ["u0199"]
        nobody = get(owner, page, q="nobody")
        assert listed_users(nobody, page) == []
        assert "No user's name or id contains “nobody”." in nobody.content.decode()
    # A search's pages keep the search.
    wide = get(owner, "/console/sharing", q="Person 0")
    assert 'href="/console/sharing?q=Person+0&amp;page=2" rel="next"' in wide.content.decode()
    assert listed_users(get(owner, "/console/sharing", q="Person 0", page="2"), "/console/sharing")[0] == "u0100"


@pytest.mark.parametrize("query,message", [
    ({"page": "0"}, "This page link is not valid: pages are numbered from 1."),
    ({"page": "two"}, "This page link is not valid: pages are numbered from 1."),
    ({"page": "-1"}, "This page link is not valid: pages are numbered from 1."),
    ({"page": "9" * 40}, "This page link is not valid: pages are numbered from 1."),
    ({"page": "4"}, "There is no page 4 of these users: the last is page 3."),
    ({"q": "Person 01", "page": "2"}, "There is no page 2 of these users: the last is page 1."),
    ({"q": "x" * 101}, "Search for a name or a user id: at most 100 printable characters."),
    ({"q": "Person\x00"}, "Search for a name or a user id: at most 100 printable characters."),
])
def test_a_page_or_search_that_is_not_valid_is_refused_with_what_is_wrong_and_changes_nothing(
        owner, apps, query, message):
    add_users(apps, 0, 230)
    before = (SharingPolicy.objects.count(), AutoStartSetting.objects.count(), AuditEntry.objects.count())
    for page in PAGES:
        refused = get(owner, page, **query)
        assert refused.status_code == 400
        assert message in refused.content.decode()
        assert listed_users(refused, page)  # the first page instead, so the admin can go on
    assert (SharingPolicy.objects.count(), AutoStartSetting.objects.count(), AuditEntry.objects.count()) == before


def test_the_groups_and_setting_names_cover_users_beyond_the_page_shown(owner, apps):
    """The groups table lists groups of every user, and a user's own auto-start row is named by their name, wherever
    that user is in the list."""
    add_users(apps, 0, 230)
    UserAuthorization.objects.filter(user_id="u0229").update(group_ids=["gLast"])
    sharing = get(owner, "/console/sharing", q="u0001").content.decode()
    assert '<tr data-group="gLast">' in sharing
    auto_start = get(owner, "/console/auto-start", q="u0001").content.decode()
    assert 'title="User id u0228">Person 0228</td>' in auto_start
