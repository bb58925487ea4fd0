"""Every sentence the simulated Zoom window shows, in one place (the product's wording, docs/ZOOM.md §12.3)."""

DISCLOSURE = "The content of this meeting is being shared with one or more apps."

# Outcome shown to the participant whose app asked to share (keys: docs/CONSENT.md short status labels).
OUTCOMES = {
    "pending": "Request sent to the host.",
    "denied": "Request for app to share meeting content denied by host.",
    "host_cannot_approve": "Host cannot approve your app's access to meeting content.",
    "disabled_by_host": "Host disabled your app from sharing meeting content.",
    "host_not_joined": "Request to share meeting content cannot be sent until the host has joined the meeting.",
    "apps_disabled": "Apps sharing meeting content have been disabled.",
}

STATUS_SHARING = "Sharing"
STATUS_PAUSED = "Paused"
STATUS_CONNECTING = "Connecting"

TOGGLE_SHARE_WITH_APPS = "Share real-time meeting content with apps"
TOGGLE_REQUIRE_APPROVAL = "Require host approval"

# An app invitation (sendAppInvitationToMeetingOwner, docs/ZOOM.md §9.2): the wording of Zoom's notice is not
# published; the buttons are the SDK's default primary and secondary button texts.
INVITATION = "{user} invited you to use {app}."
INVITATION_OPEN = "Open"
INVITATION_IGNORE = "Ignore"

NOTICE_AUTO_START = "RTMS set to auto start"
NOTICE_STARTED_BY_HOST = "RTMS started by host"

PORTAL_SHARE_SETTING = "Share real-time meeting content with apps"
PORTAL_AUTO_START = "Auto-start apps that access shared real-time meeting content"
PORTAL_CHOOSE_APP = "Choose an app to auto-start"

OWASP_HEADERS = ("Strict-Transport-Security", "X-Content-Type-Options", "Content-Security-Policy", "Referrer-Policy")


def owasp_console_message(missing, url):
    """The Zoom client's console line for a Home URL response without the OWASP headers (docs/ZOOM.md §11.1)."""
    return "Missing OWASP Secure Headers:" + "".join(f'"{name}"' for name in missing) + f"for URL {url}"
