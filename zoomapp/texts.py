"""Every sentence a person reads in the panel, in one module so it can be translated later.

The first group is docs/CONSENT.md's "Exact texts", verbatim; the panel never spells these itself. The refusals
are here too: the panel shows a refused action's message as the server wrote it. What only an operator reads (log
lines, audit reasons) stays with the code that writes it.
"""

# --- docs/CONSENT.md, verbatim ---------------------------------------------------------------
DISCLOSURE = "The content of this meeting is being shared with one or more apps."

REQUEST_SENT = "Request sent to the host."
REQUEST_DENIED = "Request for app to share meeting content denied by host."
HOST_CANNOT_APPROVE = "Host cannot approve your app's access to meeting content."
HOST_DISABLED_APP = "Host disabled your app from sharing meeting content."
HOST_NOT_JOINED = "Request to share meeting content cannot be sent until the host has joined the meeting."
APPS_DISABLED = "Apps sharing meeting content have been disabled."

STATUS_SHARING = "Sharing"
STATUS_PAUSED = "Paused"

TOGGLE_SHARE_WITH_APPS = "Share real-time meeting content with apps"
TOGGLE_REQUIRE_APPROVAL = "Require host approval"

ADMIN_AUTO_START = "Auto-start apps that access shared real-time meeting content"
ADMIN_CHOOSE_APP = "Choose an app to auto-start"
ADMIN_AUTO_START_SWITCH = "Auto-start"

AAN_AUTO_START = "RTMS set to auto start"
AAN_STARTED_BY_HOST = "RTMS started by host"

# --- Our own wording for the places docs/CONSENT.md leaves open -------------------------------
SHARE_ACTION = "Share meeting content with {app}"
HOST_JOINED_CAN_REQUEST = "The host has joined the meeting. You can send your request now."
STATUS_STARTING = "Starting…"
STATUS_INTERRUPTED = "Connection interrupted, reconnecting…"
STOPPED = "Your app stopped sharing meeting content."
MEETING_ENDED = "The meeting has ended."
STREAM_LIMIT = "Zoom's limit of apps sharing at once is reached. Try again later."
GUEST_MODE = "Sign in to Zoom to share meeting content with {app}."
NOT_IN_ZOOM = "Open this app from the Apps panel of a Zoom meeting."
CONTEXT_REFUSED = "This panel could not confirm who you are in this meeting ({reason}). Close and reopen the app."
SESSION_EXPIRED = "Your session expired. Close and reopen the app."
LEFT_MEETING = "You are no longer in this meeting."
AUTHORIZE_PROMPT = "Authorize {app} so it can start sharing when you approve."
AUTHORIZE_AGAIN = "Your authorization for {app} has expired. Authorize it again."

INSTALLED = "{app} is installed for {user}. Open it from the Apps panel in your next Zoom meeting."
INSTALL_NO_CODE = "Zoom did not send an authorization code."
INSTALL_BAD_STATE = "This install link is not valid or has expired. Start again from Zoom."

LABEL_ACTIVE_APPS = "Apps actively sharing"
LABEL_NO_ACTIVE_APPS = "No app is sharing meeting content."
LABEL_TRANSCRIPT = "What your app receives"
LABEL_NO_TRANSCRIPT = "Nothing received yet."
LABEL_SINGLE_REQUEST = "{user} wants to share meeting content with {app}."
LABEL_MULTIPLE_REQUESTS = "{count} requests to share meeting content with apps."
LABEL_APPROVE = "Approve"
LABEL_DENY = "Deny"
LABEL_APPROVE_ALL = "Approve all"
LABEL_DENY_ALL = "Deny all"
LABEL_DISABLE = "Disable"
LABEL_PAUSE = "Pause"
LABEL_RESUME = "Resume"
LABEL_STOP = "Stop"
LABEL_AUTHORIZE = "Authorize"
APPROVE_NEEDS_AUTHORIZATION = "You have not authorized {app} yet, so Zoom would ask you to approve a second time. " \
    "Authorize it first and one approval starts it."
LABEL_NOTICES = "App activity"
LABEL_AUTO_STARTED = "Auto-started"
LABEL_APP_USER = "{app} for {user}"
# A request to another of the deployment's apps, shown in the multiple-apps modal; each app decides its own.
LABEL_DECIDE_IN_OTHER_APP = "Open {app} to approve or deny."
LABEL_HOST_CONTROLS = "Meeting controls"
LABEL_GUEST = "Guest"
LABEL_HOST = "Host"
LABEL_LOADING = "Loading…"
LABEL_CANCEL_REQUEST = "Cancel request"
REQUEST_CANCELLED = "You cancelled your request. Nothing was shared."

# --- Refusals: what a refused panel request or action says (the panel shows it as it comes). Sent with the refusal,
# not with the page; the refusal's code, for scripts, stays with the check that refuses. ---------------------------
REFUSED_GUEST_ACTION = "Sign in to Zoom to use this app."
REFUSED_GUEST_REQUEST = "Sign in to Zoom to share meeting content with apps."
REFUSED_GUEST_AUTHORIZE = "Sign in to Zoom to authorize this app."
REFUSED_NOT_HOST = "Only the meeting's host or a co-host can do this."
REFUSED_NOT_OWNER_OR_HOST = "Only the app's user or a host can do this."
REFUSED_NOT_APPS_USER = "Only the app's user can report this."
REFUSED_NOT_REQUESTER = "Only the person who asked can cancel this request."
REFUSED_NOT_PENDING = "This request is no longer waiting for the host."
REFUSED_REQUEST_DECIDED = "That request is no longer waiting for a decision."
REFUSED_UNKNOWN_SHARE = "That app is not in this meeting."
REFUSED_NOT_SHARING = "That app is not sharing meeting content."
REFUSED_PAUSE_NOT_SHARING = "The app is not sharing."
REFUSED_RESUME_NOT_PAUSED = "The app is not paused."
REFUSED_UNKNOWN_MEETING = "This panel's meeting is not known."
REFUSED_UNKNOWN_APP = "No Zoom app is registered with this client id."
REFUSED_UNKNOWN_ACTION = "Unknown action."
REFUSED_NOTHING_TO_CHANGE = "Nothing to change."
REFUSED_NOT_POSITIVE_INTEGER = "'{name}' must be a positive integer."
REFUSED_NOT_REQUEST_IDS = "'{name}' must be a list of request ids."
REFUSED_NOT_TRUE_OR_FALSE = "'{name}' must be true or false."
REFUSED_NOT_IN_CLIENT_RESULT = "'result' must be started or failed."
REFUSED_ACTION_NOT_OBJECT = "The action must be a JSON object."
REFUSED_BODY_TOO_LARGE = "The request is too large."
REFUSED_BODY_NOT_JSON = "The body must be JSON."
REFUSED_BODY_NOT_OBJECT = "The body must be a JSON object."
REFUSED_FRAME_NOT_JSON = "Send one JSON action per frame."
REFUSED_NAME_NOT_STORABLE = "The name must not hold NUL characters or lone surrogates."
REFUSED_AUTHORIZED_FIELDS = "code, state and redirectUri are required."
REFUSED_TOKEN_MISSING = "missing panel token"
REFUSED_TOKEN_EXPIRED = "the panel token has expired"
REFUSED_TOKEN_INVALID = "the panel token is not valid"
REFUSED_TOKEN_OTHER_APP = "the panel token is for another app"
REFUSED_TOKEN_OTHER_PANEL = "That token is for another panel."
REFUSED_DEPARTED = "you are no longer in this meeting"

# Short status label (docs/CONSENT.md's short labels) -> the sentence the app's user reads.
OUTCOME_TEXTS = {
    "pending": REQUEST_SENT,
    "denied": REQUEST_DENIED,
    "host_cannot_approve": HOST_CANNOT_APPROVE,
    "disabled_by_host": HOST_DISABLED_APP,
    "host_not_joined": HOST_NOT_JOINED,
    "apps_disabled": APPS_DISABLED,
    "sharing": STATUS_SHARING,
    "paused": STATUS_PAUSED,
    "starting": STATUS_STARTING,
    "interrupted": STATUS_INTERRUPTED,
    "stopped": STOPPED,
    "host_joined": HOST_JOINED_CAN_REQUEST,
    "stream_limit": STREAM_LIMIT,
}

AAN_TEXTS = {"auto": AAN_AUTO_START, "host": AAN_STARTED_BY_HOST}


def panel_texts():
    """The texts the panel's script needs, by name (sent once with the page; a refusal brings its own)."""
    names = {name: value for name, value in globals().items()
             if name.isupper() and isinstance(value, str) and not name.startswith("REFUSED_")}
    return {**names, "OUTCOME_TEXTS": OUTCOME_TEXTS, "AAN_TEXTS": AAN_TEXTS}
