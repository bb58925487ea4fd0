"""Auto-start (docs/CONSENT.md rule 9) end to end: Zoom's participant_joined webhook → our auto-start decision in a
real Celery worker → REST start with the host's token (or the host's request modal) → the stream held by the
worker → every panel in the simulated Zoom window, each person in their own Chromium context.

- same account: no request, no modal; the host's AAN says "RTMS set to auto start";
- another account's admin set it and the host requires approval: the host's single-app request modal;
- two apps auto-starting for two users of another account at once: the multiple-apps modal;
- Zoom's own auto-start (its portal setting, a meeting.rtms_started with no request behind it) shows the same;
- Zoom's portal disabling sharing for the host makes the auto-start end as "Host cannot approve…".
"""

import secrets

import pytest

from tests.consent_support import register_with_sim
from tests.console_support import end_meeting_and_settle
from tests.e2e.panel_support import Person, Stack
from zoomapp import texts
from zoomapp.console import changes
from zoomapp.console.auth import ConsoleAdmin

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HOST_ACCOUNT = "acctE2E"  # the stack's users' account
OTHER_ACCOUNT = "acctVisitors"
HOST_ADMIN = ConsoleAdmin("admE2E", HOST_ACCOUNT, "Admin", "Hilde", "")
OTHER_ADMIN = ConsoleAdmin("admVis", OTHER_ACCOUNT, "Owner", "Vera", "")


@pytest.fixture
def people(browser, stack):
    opened = []

    def open_for(meeting, name):
        person = Person(browser, stack, meeting, name)
        opened.append(person)
        return person.open_panel()

    yield open_for
    for person in opened:
        person.close()


@pytest.fixture
def people_with_app(browser):
    """A person's window with another of the deployment's apps open in its Apps panel."""
    opened = []

    def open_for(app_stack, meeting, name):
        person = Person(browser, app_stack, meeting, name)
        opened.append(person)
        return person.open_panel()

    yield open_for
    for person in opened:
        person.close()


@pytest.fixture
def meeting(stack):
    """Ana hosts (already in); `guests` (Ana's account) and `visitors` (another account) are invited, not joined.
    Each meeting ends with its test, so no stream outlives it on the shared worker."""
    made = []

    def create(guests=(), visitors=(), **settings):
        tag = secrets.token_hex(3)

        def person(name, account, role="participant"):
            return {"name": name, "user_id": f"{name.lower()}{tag}", "account_id": account, "role": role,
                    "join": False}

        body = {"topic": f"Auto-start {tag}", "start": True,
                "host": {"name": "Ana", "user_id": f"ana{tag}", "account_id": HOST_ACCOUNT},
                "participants": [person(n, HOST_ACCOUNT) for n in guests] + [person(n, OTHER_ACCOUNT)
                                                                             for n in visitors],
                "settings": {"share_with_apps": True, "require_host_approval": True, **settings}}
        result = stack.sim_call("POST", "/_sim/meetings", body)
        made.append(result)
        stack.authorize(f"ana{tag}")  # REST starts use the host's token
        return result

    yield create
    for m in made:
        end_meeting_and_settle(stack.sim, m)


def join(stack, meeting, *names):
    for name in names:
        stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/join", {"key": stack.key(meeting, name)})


def notice(host, kind, text):
    item = host.frame.locator(f"#notices li[data-kind='{kind}']", has_text=text)
    item.wait_for(timeout=15000)
    return item.inner_text()


def test_same_account_auto_start_needs_no_request_and_the_host_sees_set_to_auto_start(
        stack, people, meeting):
    m = meeting(guests=["Ben"])
    stack.authorize(stack.user_id(m, "Ben"))  # Ben installed the app: his account is known from Zoom
    changes.set_auto_start(HOST_ADMIN, stack.app, "user", stack.user_id(m, "Ben"), True)
    ana = people(m, "Ana")
    join(stack, m, "Ben")

    assert notice(ana, "auto", "Notes Bot for Ben") == f"{texts.AAN_AUTO_START}: Notes Bot for Ben"
    ana.frame.locator("#active-apps li[data-status='sharing']", has_text="Notes Bot for Ben").wait_for(timeout=15000)
    assert not ana.frame.locator("#requests-modal").evaluate("m => m.open")
    ben = people(m, "Ben")
    assert ben.wait_outcome("sharing", timeout=15000) == texts.STATUS_SHARING
    assert ben.frame.locator("#disclosure").inner_text() == texts.DISCLOSURE
    ana.screenshot("autostart-1-host-aan-same-account")
    ben.screenshot("autostart-1-user-sharing")


def test_another_accounts_auto_start_asks_a_host_who_requires_approval(stack, people, meeting):
    m = meeting(visitors=["Olga"])
    stack.authorize(stack.user_id(m, "Olga"))  # Olga installed the app: her account is known from Zoom
    changes.set_auto_start(OTHER_ADMIN, stack.app, "user", stack.user_id(m, "Olga"), True)
    ana = people(m, "Ana")
    join(stack, m, "Olga")

    ana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]", timeout=15000)
    assert ana.frame.locator("#requests-title").inner_text() == texts.LABEL_SINGLE_REQUEST.format(
        user="Olga", app="Notes Bot")
    ana.screenshot("autostart-2-host-single-modal-other-account")
    ana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
    ana.frame.locator("#active-apps li[data-status='sharing']", has_text="Notes Bot for Olga").wait_for(timeout=15000)
    assert notice(ana, "auto", "Notes Bot for Olga").startswith(texts.AAN_AUTO_START)


def test_two_apps_auto_starting_for_two_users_at_once_make_the_multiple_apps_modal(
        stack, people, people_with_app, meeting):
    from zoomapp.marketplace.models import ZoomApp

    recorder = ZoomApp.objects.create(name="Recorder", client_id=f"rec{secrets.token_hex(4)}",
                                      client_secret=secrets.token_hex(16), webhook_secret_token=secrets.token_hex(16),
                                      account_id=HOST_ACCOUNT)
    register_with_sim(stack.sim, stack.web.url, recorder, account_id=HOST_ACCOUNT)
    m = meeting(visitors=["Olga", "Pete"])
    Stack(stack.sim, stack.web, recorder).authorize(stack.user_id(m, "Ana"))  # the host authorized both apps
    stack.authorize(stack.user_id(m, "Olga"))  # Olga installed the app: her account is known from Zoom
    changes.set_auto_start(OTHER_ADMIN, stack.app, "user", stack.user_id(m, "Olga"), True)
    Stack(stack.sim, stack.web, recorder).authorize(stack.user_id(m, "Pete"))
    changes.set_auto_start(OTHER_ADMIN, recorder, "user", stack.user_id(m, "Pete"), True)
    ana = people(m, "Ana")
    join(stack, m, "Olga", "Pete")

    ana.frame.wait_for_selector("#requests-modal[data-kind='multiple'][open]", timeout=15000)
    ana.frame.locator("#requests-list li", has_text="Recorder for Pete").wait_for(timeout=15000)
    listed = ana.frame.locator("#requests-list .who").all_inner_texts()
    assert sorted(listed) == ["Notes Bot for Olga", "Recorder for Pete"]
    assert ana.frame.locator("#requests-title").inner_text() == texts.LABEL_MULTIPLE_REQUESTS.format(count=2)
    # Each app decides its own requests (docs/SECURITY.md "Tenancy"): Recorder's is listed, decided in Recorder.
    recorder_row = ana.frame.locator("#requests-list li[data-other-app='true']")
    assert recorder_row.locator(".row").inner_text() == texts.LABEL_DECIDE_IN_OTHER_APP.format(app="Recorder")
    assert recorder_row.locator("button").count() == 0
    ana.screenshot("autostart-3-host-multiple-apps-modal")

    ana.frame.locator("#requests-list li", has_text="Notes Bot for Olga").locator(
        "button", has_text=texts.LABEL_APPROVE).click()
    ana.frame.locator("#active-apps li[data-status='sharing']", has_text="Notes Bot for Olga").wait_for(timeout=20000)
    assert notice(ana, "auto", "Notes Bot for Olga").startswith(texts.AAN_AUTO_START)

    ana_in_recorder = people_with_app(Stack(stack.sim, stack.web, recorder), m, "Ana")
    ana_in_recorder.frame.wait_for_selector("#requests-modal[data-kind='single'][open]", timeout=15000)
    ana_in_recorder.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
    ana_in_recorder.frame.locator("#active-apps li[data-status='sharing']", has_text="Recorder for Pete").wait_for(
        timeout=20000)
    assert notice(ana_in_recorder, "auto", "Recorder for Pete").startswith(texts.AAN_AUTO_START)


def test_zoom_performed_auto_start_shows_as_auto_started(stack, people, meeting):
    """No setting of ours: Zoom's own portal setting starts it. A meeting.rtms_started with no request behind it."""
    m = meeting(guests=["Ben"])
    stack.sim_call("PUT", f"/_sim/settings/user/{stack.user_id(m, 'Ben')}", {"auto_start_apps": [stack.app.client_id]})
    ana = people(m, "Ana")
    join(stack, m, "Ben")
    assert notice(ana, "auto", "Notes Bot for Ben") == f"{texts.AAN_AUTO_START}: Notes Bot for Ben"
    ben = people(m, "Ben")
    assert ben.wait_outcome("sharing", timeout=15000) == texts.STATUS_SHARING
    # Every panel, not only the host's: the app is shown as auto-started.
    row = ben.frame.locator("#active-apps li[data-started-by='auto']", has_text="Notes Bot for Ben")
    assert texts.LABEL_AUTO_STARTED in row.inner_text()
    ben.screenshot("autostart-5-zoom-auto-start-participant")


def test_zoom_portal_refusing_the_start_ends_as_host_cannot_approve(stack, people, meeting):
    """Our setting says auto-start, but Zoom's portal disables sharing for the host: Zoom refuses the REST start."""
    m = meeting(guests=["Ben"])
    stack.sim_call("PUT", f"/_sim/settings/user/{stack.user_id(m, 'Ana')}", {"share_with_apps": False})
    stack.authorize(stack.user_id(m, "Ben"))  # Ben installed the app: his account is known from Zoom
    changes.set_auto_start(HOST_ADMIN, stack.app, "user", stack.user_id(m, "Ben"), True)
    join(stack, m, "Ben")
    ben = people(m, "Ben")
    assert ben.wait_outcome("host_cannot_approve", timeout=15000) == texts.HOST_CANNOT_APPROVE
    ben.screenshot("autostart-4-zoom-portal-refused")
