"""axe-core (npm, pinned in tests/e2e/axe/package-lock.json) run inside a page or frame the test has open.

`npm ci` installs it into var/cache/ the first time (keyed by the lock file's hash, one install for parallel
runs); node_modules is never committed. Usage, from any end-to-end test (panel, simulated window, console):

    from tests.e2e.axe_support import axe_script, assert_no_violations  # axe_script is a session fixture

    def test_x(axe_script, page):
        assert_no_violations(page, axe_script, "console: audit log")

`assert_no_violations` evaluates axe.min.js in the page through Playwright (the page's own Content-Security-Policy
does not apply to it) and fails listing each violation's rule, impact, help text and the offending nodes.
"""

import json
from pathlib import Path

import pytest

from tests.npm_support import npm_installed

SOURCES = Path(__file__).resolve().parent / "axe"
AXE_SCRIPT = "node_modules/axe-core/axe.min.js"
# WCAG 2.1 A and AA plus axe's best practices: what a person using a screen reader or a keyboard runs into.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@pytest.fixture(scope="session")
def axe_script():
    """The path of axe.min.js from the pinned axe-core package."""
    return npm_installed(SOURCES, "axe", AXE_SCRIPT) / AXE_SCRIPT


def violations(target, axe_script, exclude=()):
    """axe's violations in a Playwright Page or Frame (only that document: a frame inside it is checked on its own,
    where its own origin's rules apply). `exclude` lists selectors left out, each for a stated reason."""
    if not target.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated through the browser's debugging protocol, which the page's Content-Security-Policy does not
        # govern (add_script_tag inserts an inline <script> the pages' script-src 'self' refuses).
        target.evaluate(axe_script.read_text())
    return target.evaluate(
        """async ([tags, exclude]) => {
            const result = await axe.run({include: [document], exclude: exclude.map((s) => [s])},
                                         {runOnly: {type: "tag", values: tags}, iframes: false});
            return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary}))}));
        }""",
        [TAGS, list(exclude)],
    )


def assert_no_violations(target, axe_script, where, exclude=()):
    found = violations(target, axe_script, exclude)
    assert not found, f"axe-core found {len(found)} violation(s) on {where}:\n" + json.dumps(found, indent=2)
