"""Meetings as the app knows them, who is in them, who asked to share with which app, and the audit log.

The rows here are only changed by the do_* actions in zoomapp.consent.actions, which also write the audit entry
(zoomapp.consent.audit, the log's one writer) and push the meeting's state to every panel.
"""

from django.core.exceptions import PermissionDenied
from django.db import models

from zoomapp.marketplace.models import ZoomApp


class Meeting(models.Model):
    """A Zoom meeting as one app sees it, keyed by (app, UUID): each app's webhooks and app contexts write only
    that app's row, so one app's inputs never change what another app knows (docs/SECURITY.md "Tenancy")."""

    app = models.ForeignKey(ZoomApp, on_delete=models.CASCADE, related_name="meetings")
    uuid = models.CharField(max_length=100)
    # The numeric id REST wants (`/v2/live_meetings/{meetingId}`); learnt from webhooks or the host's panel.
    zoom_meeting_id = models.CharField(max_length=30, blank=True)
    topic = models.CharField(max_length=300, blank=True)
    host_user_id = models.CharField(max_length=100, blank=True)
    account_id = models.CharField(max_length=100, blank=True)
    host_present = models.BooleanField(default=False)
    # The host's two in-meeting toggles (docs/CONSENT.md rule 10).
    share_with_apps = models.BooleanField(default=True)
    require_host_approval = models.BooleanField(default=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every change; panels apply a pushed state only when its version is newer.
    version = models.PositiveBigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        # UUID first: its index also serves the lookups by UUID alone (every app's row of a meeting, read on each
        # push to the panels), which otherwise scanned the whole table. The app's own index comes with its key.
        constraints = [models.UniqueConstraint(fields=["uuid", "app"], name="one_meeting_per_app")]
        indexes = [
            # The console's pages: an account's meetings newest first, and its streams, hosts and names through them.
            models.Index(fields=["account_id", "created"], name="meeting_by_account"),
            # Each join's auto-start: the account of a user with no grant, by the meetings they hosted (user_account).
            models.Index(fields=["host_user_id"], name="meeting_by_host"),
        ]

    def __str__(self):
        return self.topic or self.uuid


class Participant(models.Model):
    class Role(models.TextChoices):
        HOST = "host"
        CO_HOST = "co-host"
        PARTICIPANT = "participant"

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="participants")
    user_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.PARTICIPANT)
    # Zoom's time (ms) as of which `role` holds: the ts of the app context that bound it, or the event_ts of the
    # meeting.participant_role_changed that set it (when we heard it plus the clock skew app contexts may have,
    # for a delivery without one). An app context or a role change no later does not change the role
    # (docs/SECURITY.md "Roles follow Zoom's latest word").
    role_as_of_ms = models.BigIntegerField(null=True, blank=True)
    present = models.BooleanField(default=True)
    # Zoom's time (ms, the event_ts) of the join or leave `present` holds as of: a join or leave Zoom made before it
    # (a delivery retried minutes late) changes nothing (docs/SECURITY.md "Presence follows Zoom's latest word").
    presence_as_of_ms = models.BigIntegerField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        # User first: its index also finds a user's rows across meetings (the console's names of stream operators,
        # every 2 s of an open live streams page); the meeting's own index comes with its key.
        constraints = [models.UniqueConstraint(fields=["user_id", "meeting"], name="one_participant_per_user")]


class Share(models.Model):
    """One app's access to the meeting's content on behalf of one user: its current outcome and stream."""

    class Status(models.TextChoices):
        # docs/CONSENT.md's short labels, plus host_joined ("you can ask now").
        PENDING = "pending"
        STARTING = "starting"
        SHARING = "sharing"
        PAUSED = "paused"
        INTERRUPTED = "interrupted"
        DENIED = "denied"
        HOST_NOT_JOINED = "host_not_joined"
        HOST_JOINED = "host_joined"
        HOST_CANNOT_APPROVE = "host_cannot_approve"
        DISABLED_BY_HOST = "disabled_by_host"
        APPS_DISABLED = "apps_disabled"
        STOPPED = "stopped"
        STREAM_LIMIT = "stream_limit"  # Zoom refused the start: the app owner's concurrent-stream limit

    ACTIVE = (Status.STARTING, Status.SHARING, Status.PAUSED, Status.INTERRUPTED)

    class StartedBy(models.TextChoices):
        NOT_STARTED = ""
        HOST = "host"  # approved by a host, started by the host or from the app (AAN "RTMS started by host")
        AUTO = "auto"  # Zoom or an admin setting started it (AAN "RTMS set to auto start")

    class StartPath(models.TextChoices):
        NONE = ""
        REST = "rest"  # rtms_app/status with the approving host's token
        IN_CLIENT = "in_client"  # the requester's panel calls zoomSdk.startRTMS()

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="shares")
    app = models.ForeignKey(ZoomApp, on_delete=models.CASCADE, related_name="shares")
    user_id = models.CharField(max_length=100)
    user_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=30, choices=Status.choices)
    started_by = models.CharField(max_length=10, choices=StartedBy.choices, blank=True, default="")
    start_path = models.CharField(max_length=10, choices=StartPath.choices, blank=True, default="")
    rtms_stream_id = models.CharField(max_length=64, blank=True)
    # Bumped at each start, so the requester's panel calls zoomSdk.startRTMS() once per start, not per push.
    start_attempt = models.PositiveIntegerField(default=0)
    # Why we asked Zoom to stop it, so Zoom's stop reason maps to the outcome the host chose.
    stop_intent = models.CharField(max_length=30, blank=True)
    stop_reason = models.IntegerField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        # User first, as for Participant: the console's names by user id; the meeting's own index comes with its key.
        constraints = [models.UniqueConstraint(fields=["user_id", "meeting", "app"], name="one_share_per_app_user")]
        ordering = ["id"]
        indexes = [
            # Every batch of transcript lines finds its streams' shares by stream id (receivers.on_transcript).
            models.Index(fields=["rtms_stream_id"], name="share_by_stream"),
            # The shares still running, which every 30 s consent/tasks.py checks (a few among every share ever).
            models.Index(fields=["status"], name="share_running",
                         condition=models.Q(status__in=["starting", "sharing", "paused", "interrupted"])),
        ]

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    def set_status(self, status, **fields):
        """Save a new outcome (and any other fields given) at once; callers hold the row's lock."""
        self.status = status
        for key, value in fields.items():
            setattr(self, key, value)
        self.save()


class ShareRequest(models.Model):
    """A request the host decides on (the request modal lists the pending ones)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        WITHDRAWN = "withdrawn"  # the meeting ended, sharing was turned off, or approval stopped being required

    class Source(models.TextChoices):
        PARTICIPANT = "participant"
        AUTO = "auto"  # auto-start set by another account's admin (docs/CONSENT.md rule 9)

    share = models.ForeignKey(Share, on_delete=models.CASCADE, related_name="requests")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.PARTICIPANT)
    created = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["id"]


class SharingPolicy(models.Model):
    """Admin setting "Share real-time meeting content with apps" at account, group or user level.

    The effective value for a user is the most specific row: user, else group, else account
    (see zoomapp.consent.policy). The admin console (zoomapp/console) edits these rows.
    """

    class Level(models.TextChoices):
        ACCOUNT = "account"
        GROUP = "group"
        USER = "user"

    account_id = models.CharField(max_length=100)
    level = models.CharField(max_length=10, choices=Level.choices)
    # The account id again for account rows, the group id or the user id otherwise.
    target_id = models.CharField(max_length=100)
    share_with_apps = models.BooleanField()
    updated = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account_id", "level", "target_id"], name="one_policy_per_target")
        ]


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionDenied("the audit log is append-only")

    def delete(self):
        raise PermissionDenied("the audit log is append-only")

    def file_under_account(self, app, meeting_uuid, account_id):
        """The one write the log allows: an app's entries about a meeting recorded before Zoom told us the
        meeting's account are filed under it once it is known (consent.meetings.get_meeting). It changes no
        recorded fact, only which account's console lists them."""
        unfiled = self.filter(app=app, meeting_uuid=meeting_uuid, account_id="")
        return models.QuerySet.update(unfiled, account_id=account_id)


class AuditEntry(models.Model):
    """Who did what, when, why and from where: every consent decision and stream transition."""

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=50, db_index=True)  # e.g. request, approve, deny, stream_started
    # No cascade, no SET NULL: removing an app must not rewrite its history.
    app = models.ForeignKey(
        ZoomApp, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    meeting_uuid = models.CharField(max_length=100, blank=True, db_index=True)
    actor_user_id = models.CharField(max_length=100, blank=True)  # "zoom" when Zoom itself acted
    actor_role = models.CharField(max_length=20, blank=True)
    subject_user_id = models.CharField(max_length=100, blank=True, db_index=True)  # the app's user
    outcome = models.CharField(max_length=30, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=30, blank=True)  # panel_ws, panel_http, webhook, stream, task
    source_address = models.CharField(max_length=100, blank=True)
    rtms_stream_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # The account whose console lists the entry: its meeting's (as its own app's row says) or the one an admin
    # or a deauthorization acted in; "" until known (docs/SECURITY.md "Tenancy").
    account_id = models.CharField(max_length=100, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # The console's audit page, newest first, and its filter by kind (which also lists the kinds).
            models.Index(fields=["account_id", "-id"], name="audit_by_account"),
            models.Index(fields=["account_id", "kind", "-id"], name="audit_by_account_kind"),
        ]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionDenied("the audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionDenied("the audit log is append-only")
