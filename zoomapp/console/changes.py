"""Every change an admin makes in the console: the row and its audit entry, in one transaction.

Each function takes the signed-in `ConsoleAdmin` and only ever touches that admin's account; the views call
nothing else to change state. Audit entries carry `detail.account_id`, which is how the console's audit log
finds entries that belong to no meeting.
"""

import logging

from django.db import transaction

from zoomapp.consent.audit import record
from zoomapp.consent.models import SharingPolicy
from zoomapp.console.models import AppRetention, AutoStartSetting, Level

log = logging.getLogger("zoomapp.console")


def audit(admin, kind, *, reason="", address="", app=None, meeting_uuid="", subject_user_id="", detail=None,
          outcome=""):
    return record(kind, app=app, meeting_uuid=meeting_uuid, actor_user_id=admin.user_id,
                  actor_role=admin.audit_role, subject_user_id=subject_user_id, outcome=outcome, reason=reason,
                  source="console", address=address, detail={"account_id": admin.account_id, **(detail or {})})


def _target(admin, level, target_id):
    if level == Level.ACCOUNT:
        return admin.account_id
    if not target_id:
        raise ValueError(f"a {level} setting needs a {level} id")
    return target_id


@transaction.atomic
def set_sharing_policy(admin, level, target_id, value, address=""):
    """"Share real-time meeting content with apps" On (True), Off (False) or not set here (None)."""
    target_id = _target(admin, level, target_id)
    key = {"account_id": admin.account_id, "level": level, "target_id": target_id}
    previous = SharingPolicy.objects.filter(**key).values_list("share_with_apps", flat=True).first()
    if value is None:
        SharingPolicy.objects.filter(**key).delete()
    else:
        SharingPolicy.objects.update_or_create(**key, defaults={"share_with_apps": value, "updated_by": admin.user_id})
    audit(admin, "sharing_policy_changed", address=address,
          reason=f"{level} setting {_word(previous)} -> {_word(value)}",
          subject_user_id=target_id if level == Level.USER else "",
          detail={"level": level, "target_id": target_id, "previous": previous, "value": value})
    log.info("sharing policy changed", extra={"account": admin.account_id, "setting_level": level, "target": target_id,
                                              "value": value, "admin": admin.user_id})


@transaction.atomic
def set_auto_start(admin, app, level, target_id, value, address=""):
    """Auto-start On (True) / Off (False) for one app at one level, or not set here (None)."""
    target_id = _target(admin, level, target_id)
    key = {"account_id": admin.account_id, "level": level, "target_id": target_id, "app": app}
    previous = AutoStartSetting.objects.filter(**key).values_list("auto_start", flat=True).first()
    if value is None:
        AutoStartSetting.objects.filter(**key).delete()
    else:
        AutoStartSetting.objects.update_or_create(**key, defaults={"auto_start": value, "updated_by": admin.user_id})
    audit(admin, "auto_start_changed", app=app, address=address,
          reason=f"{level} setting {_word(previous)} -> {_word(value)}",
          subject_user_id=target_id if level == Level.USER else "",
          detail={"level": level, "target_id": target_id, "previous": previous, "value": value})
    log.info("auto-start changed", extra={"account": admin.account_id, "client_id": app.client_id,
                                          "setting_level": level, "target": target_id, "value": value,
                                          "admin": admin.user_id})


@transaction.atomic
def set_retention(admin, app, days, address=""):
    """Days this account keeps `app`'s stored media; None goes back to the deployment's default."""
    key = {"account_id": admin.account_id, "app": app}
    previous = AppRetention.objects.filter(**key).values_list("days", flat=True).first()
    if days is None:
        AppRetention.objects.filter(**key).delete()
    else:
        AppRetention.objects.update_or_create(**key, defaults={"days": days, "updated_by": admin.user_id})
    audit(admin, "retention_changed", app=app, address=address,
          reason=f"retention {previous or 'default'} -> {days or 'default'} days",
          detail={"previous": previous, "value": days})


def _word(value):
    return {True: "on", False: "off", None: "not set"}[value]
