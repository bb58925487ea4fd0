"""What the console shows a person instead of raw ids and codes: names of users, meetings and apps, a label for a
worker process, readable stop reasons and outcomes, what each change in the audit log changed, and what a stored
media segment holds.

The raw values stay one click away (a title on hover, the audit row's details): an admin comparing with Zoom's
own pages or the logs still finds every id.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from rtms.models import MediaFile, ParticipantEvent, stop_reason_label
from zoomapp import texts
from zoomapp.console import account_data

KINDS = {
    "request": "Request to share",
    "approve": "Approved by the host",
    "deny": "Denied by the host",
    "auto_start": "Auto-start",
    "start_in_client": "Started in the Zoom client",
    "start_requested": "Start asked of Zoom",
    "zoom_request_status": "Zoom's answer to a request",
    "start_failed": "Start failed",
    "set_toggles": "Host changed meeting settings",
    "disable_all": "Host turned sharing off",
    "paused": "Paused",
    "resumed": "Resumed",
    "stream_started": "Stream started",
    "stream_stopped": "Stream stopped",
    "stream_restart": "Stream restarted through Zoom",
    "stream_not_restarted": "Stream not restarted",
    "host_joined": "Host joined",
    "host_left": "Host left",
    "participant_left": "Participant left",
    "meeting_ended": "Meeting ended",
    "console_sign_in": "Signed in to the console",
    "sharing_policy_changed": "Sharing setting changed",
    "auto_start_changed": "Auto-start setting changed",
    "retention_changed": "Retention changed",
    "meeting_data_deleted": "Meeting data deleted",
    "media_deleted": "Media deleted",
    "user_data_deleted": "User's data deleted",
    "tokens_deleted": "Authorization removed",
    "media_downloaded": "Media downloaded",
    "audit_exported": "Audit log exported",
}
TOGGLES = {"share_with_apps": texts.TOGGLE_SHARE_WITH_APPS, "require_host_approval": texts.TOGGLE_REQUIRE_APPROVAL}
# Who acted when no person did (zoomapp/consent: ZOOM for webhooks, "app" for the app's own tasks).
ACTORS = {"zoom": "Zoom", "app": "the app"}
# Audit reasons name Zoom's stop reasons by their enum names, with or without the number after them
# ("INTERNAL_EXCEPTION (10): restart 1 of 3"); each such name is shown as its label.
STOP_REASON_IN_TEXT = re.compile(r"\b([A-Z][A-Z0-9_]{3,})\b(?: \(\d+\))?")


def kind_label(kind):
    return KINDS.get(kind, kind.replace("_", " ").capitalize())


def worker_label(worker_id):
    """A session host's id is "<host name>:<process id>" (rtms.host.start_host): "process 4242 on web-1"."""
    host, _, pid = worker_id.rpartition(":")
    return f"process {pid} on {host}" if host and pid.isdigit() else worker_id


def participant_names(stream):
    """{RTMS user id: name} as the stream's participant events named them (per-participant audio is filed by id)."""
    return dict(ParticipantEvent.objects.filter(stream=stream, user_id__isnull=False).exclude(user_name="")
                .values_list("user_id", "user_name"))


def media_label(segment, names):
    """What a stored segment holds, in words: "Audio of Ada Lovelace", "Screen share frames (index)"."""
    if segment.kind == MediaFile.Kind.AUDIO_PARTICIPANT:
        return f"Audio of {names.get(segment.user_id) or f'participant {segment.user_id}'}"
    return {MediaFile.Kind.AUDIO_MIXED: "Audio of everyone", MediaFile.Kind.VIDEO: "Video frames (index)",
            MediaFile.Kind.DESKSHARE: "Screen share frames (index)"}.get(segment.kind, segment.kind)


def zoom_time(ms):
    """A timestamp of Zoom's (ms since the epoch) as a UTC datetime; None when Zoom gave none."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def readable_reason(text, users):
    """A recorded reason with stop reasons as labels and the user ids it names as their names."""
    def label(match):
        readable = stop_reason_label(match.group(1))
        return match.group(0) if readable == match.group(1) else readable

    text = STOP_REASON_IN_TEXT.sub(label, text)
    for user_id, name in users.items():
        text = text.replace(user_id, name)
    return text


def _on_off(value):
    return {True: "on", False: "off", None: "not set"}[value]


def _target(detail, users):
    level, target = detail.get("level"), detail.get("target_id", "")
    if level == "account":
        return "the account"
    if level == "group":
        return f"group {target}"
    return users.get(target, target)


@dataclass
class SettingChange:
    """A setting change's target and values as the CSV export's columns show them; blank for other entries."""

    level: str = ""
    target_id: str = ""
    previous: str = ""
    new: str = ""


def setting_change(entry):
    detail = entry.detail or {}
    if entry.kind in ("sharing_policy_changed", "auto_start_changed") and "level" in detail:
        return SettingChange(detail["level"], detail.get("target_id", ""), _on_off(detail.get("previous")),
                             _on_off(detail.get("value")))
    if entry.kind == "retention_changed" and "value" in detail:
        def days(value):
            return str(value) if value else "default"

        # An account's retention is per app: the app is the entry's own column.
        return SettingChange("account", detail.get("account_id", ""), days(detail.get("previous")),
                             days(detail.get("value")))
    return SettingChange()


def change_text(entry, users):
    """What a change row changed, from the detail it recorded ("Require host approval: on → off")."""
    detail = entry.detail or {}
    if entry.kind == "set_toggles":
        # The host's toggles are recorded only when they change: the previous value is the other one.
        return "; ".join(f"{TOGGLES[key]}: {_on_off(not value)} → {_on_off(value)}"
                         for key, value in detail.items() if key in TOGGLES)
    if entry.kind in ("sharing_policy_changed", "auto_start_changed") and "level" in detail:
        setting = texts.TOGGLE_SHARE_WITH_APPS if entry.kind == "sharing_policy_changed" else "Auto-start"
        return (f"{setting} for {_target(detail, users)}: "
                f"{_on_off(detail.get('previous'))} → {_on_off(detail.get('value'))}")
    if entry.kind == "retention_changed" and "value" in detail:
        def days(value):
            return f"{value} days" if value else "the deployment's default"

        return f"Media kept: {days(detail.get('previous'))} → {days(detail.get('value'))}"
    if entry.kind == "media_downloaded" and "file" in detail:
        return f"{detail['file']} of stream {detail.get('rtms_stream_id', '')}"
    if entry.kind == "audit_exported" and "filters" in detail:
        filters = detail["filters"]
        return ("CSV of " + ", ".join(f"{name.replace('date_', '')} {value}" for name, value in filters.items())
                if filters else "CSV of the whole log")
    return ""


@dataclass
class AuditRow:
    entry: object
    what: str
    change: str
    why: str
    outcome: str
    meeting: str
    actor: str
    actor_role: str
    subject: str
    subject_user_id: str


def audit_rows(account_id, entries):
    """The entries as the audit table shows them: names for users and meetings, labels for kinds, outcomes and
    stop reasons, and what changed; entries whose change is spelled out do not repeat it as their reason."""
    entries = list(entries)
    subjects = {entry.pk: entry.subject_user_id or (entry.detail or {}).get("user_id", "") for entry in entries}
    setting_targets = {(entry.detail or {}).get("target_id", "") for entry in entries
                       if (entry.detail or {}).get("level") == "user"}
    users = account_data.user_names(
        account_id, {entry.actor_user_id for entry in entries} | set(subjects.values()) | setting_targets)
    topics = account_data.meeting_topics(account_id, {entry.meeting_uuid for entry in entries if entry.meeting_uuid})
    rows = []
    for entry in entries:
        change = change_text(entry, users)
        subject = subjects[entry.pk]
        rows.append(AuditRow(
            entry=entry,
            what=kind_label(entry.kind),
            change=change,
            why="" if change else readable_reason(entry.reason, users),
            outcome=entry.outcome.replace("_", " ").capitalize(),
            meeting=topics.get(entry.meeting_uuid, ""),
            actor=ACTORS.get(entry.actor_user_id) or users.get(entry.actor_user_id, entry.actor_user_id),
            actor_role="" if entry.actor_user_id in ACTORS or entry.actor_role == entry.actor_user_id
            else entry.actor_role,
            subject=users.get(subject, subject),
            subject_user_id=subject,
        ))
    return rows


def filters_in_words(account_id, filters):
    """The audit log's active filters by name ("meeting “Quarterly planning”, user Pat Participant")."""
    words = []
    if filters.get("meeting"):
        topic = account_data.meeting_topics(account_id, [filters["meeting"]]).get(filters["meeting"])
        words.append(f"meeting “{topic}”" if topic else f"meeting {filters['meeting']}")
    if filters.get("user"):
        words.append("user " + account_data.user_names(account_id, [filters["user"]]).get(filters["user"],
                                                                                          filters["user"]))
    if filters.get("kind"):
        words.append(f"“{kind_label(filters['kind'])}”")
    if filters.get("date_from"):
        words.append(f"from {filters['date_from']:%Y-%m-%d}")
    if filters.get("date_to"):
        words.append(f"to {filters['date_to']:%Y-%m-%d} (UTC)")
    return ", ".join(words)
