"""The admin console's pages: server-rendered, no inline script (CSP), one account's data per signed-in admin.

Reads go through account_data (always filtered by the admin's account), changes through changes (row + audit
entry) and lifecycle (deletions). Another account's meeting or setting is answered as if it did not exist.
"""

import csv
import functools
import json
import logging
import time
from importlib import import_module
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.db import connection
from django.db.models import Exists, OuterRef
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rtms import storage
from rtms.models import MediaFile, StreamSession
from zoomapp import texts
from zoomapp.consent.models import SharingPolicy
from zoomapp.console import account_data, auth, changes, display, forms, lifecycle, paging, streams_feed
from zoomapp.console.models import AppRetention, AutoStartSetting, Level
from zoomapp.marketplace import oauth
from zoomapp.marketplace.models import ZoomApp
from zoomapp.marketplace.registration import app_urls
from zoomapp.marketplace.security_headers import strict_transport_security
from zoomapp.webhooks import concurrency

log = logging.getLogger("zoomapp.console")

APPS_ARE_REGISTERED_BY_THE_OPERATOR = (
    "Apps cannot be registered or changed in the console. This deployment's operator registers Zoom apps "
    "(manage.py register_zoom_app or the Django admin); your account's apps appear here once one of its users "
    "installs them.")


def content_security_policy(request):
    socket_origin = ("wss://" if request.is_secure() else "ws://") + request.get_host()
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {socket_origin}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def secure_headers(view):
    """Zoom's four headers (docs/ZOOM.md §11.1) on every console response; CSP without inline scripts."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = content_security_policy(request)
        response["Strict-Transport-Security"] = strict_transport_security()
        response["X-Content-Type-Options"] = "nosniff"
        response["Referrer-Policy"] = "same-origin"
        response["Cache-Control"] = "no-store"
        return response

    return wrapper


def console_page(view):
    return secure_headers(auth.admin_required(view))


def _page(request, template, section, status=200, **context):
    return render(request, template, {"admin": request.admin, "section": section, "texts": texts, **context},
                  status=status)


# --- sign-in ------------------------------------------------------------------------------------------------------


@secure_headers
@require_GET
def signin(request):
    return render(request, "console/signin.html", {"apps": _apps_that_sign_in(), "admin": auth.current_admin(request)})


def _apps_that_sign_in():
    """Apps with OAuth credentials (the secret is encrypted, so it is checked here, not in SQL)."""
    return [app for app in ZoomApp.objects.all() if app.client_secret]


@secure_headers
@require_GET
def signin_start(request, client_id):
    app = next((app for app in _apps_that_sign_in() if app.client_id == client_id), None)
    if app is None:
        raise Http404("No app signs in with this client id.")
    return redirect(auth.start_sign_in(request, app))


@secure_headers
@require_GET
def oauth_callback(request, client_id):
    """Zoom sends the admin back here; only an Owner or Admin of an account gets a console session."""
    app = ZoomApp.by_client_id(client_id)
    code, state = request.GET.get("code", ""), request.GET.get("state", "")
    if app is None or not code or not auth.take_pending_sign_in(request, client_id, state):
        log.warning("console sign-in refused", extra={"client_id": client_id, "why": "state"})
        return _refused(request, "This sign-in was not started from this browser, or it has expired. Sign in again.")
    try:
        grant = oauth.complete_authorization(app, code, redirect_to=auth.console_redirect_uri(app))
    except oauth.OAuthError as exc:
        log.warning("console sign-in refused", extra={"client_id": client_id, "why": "oauth", "error": str(exc)})
        return _refused(request, f"Zoom did not confirm who you are: {exc}")
    if grant.role_name not in auth.ADMIN_ROLES or not grant.account_id:
        log.warning("console sign-in refused", extra={"client_id": client_id, "user": grant.user_id,
                                                      "role": grant.role_name, "why": "not_admin"})
        return _refused(
            request,
            f"The admin console is for account owners and admins. Zoom says your role is "
            f"{grant.role_name or 'unknown'}.",
        )
    admin = auth.ConsoleAdmin(grant.user_id, grant.account_id, grant.role_name, grant.display_name, client_id)
    auth.sign_in(request, admin)
    changes.audit(admin, "console_sign_in", app=app, address=auth.client_address(request),
                  reason=f"signed in as {grant.role_name}")
    log.info("console sign-in", extra={"user": admin.user_id, "account": admin.account_id, "role": admin.role})
    return redirect("console:sharing")


def _refused(request, reason):
    return render(request, "console/refused.html", {"reason": reason}, status=403)


@secure_headers
@require_POST
def signout(request):
    auth.sign_out(request)
    return redirect("console:signin")


# --- sharing with apps --------------------------------------------------------------------------------------------


@console_page
@require_http_methods(["GET", "POST"])
def sharing(request):
    account_id = request.admin.account_id
    status = 200
    if request.method == "POST":
        form = forms.LevelSettingForm(request.POST, account_id=account_id)
        if form.is_valid():
            changes.set_sharing_policy(request.admin, form.cleaned_data["level"], form.cleaned_data["target_id"],
                                       form.cleaned_data["value"], auth.client_address(request))
            messages.success(request, "Saved.")
            return redirect("console:sharing")
        messages.error(request, form.error_text())
        status = 400
    apps = list(account_data.installed_apps(account_id))
    users = paging.users_with_effective_settings(account_id, apps, request.GET)
    if users.refusal:
        messages.error(request, users.refusal)
        status = 400
    rows = {(r.level, r.target_id): r.share_with_apps
            for r in SharingPolicy.objects.filter(account_id=account_id).exclude(level=Level.USER)}
    groups = [(g, rows.get((Level.GROUP, g))) for g in paging.account_groups(account_id)]
    return _page(request, "console/sharing.html", "sharing", users=users, groups=groups,
                 account_value=rows.get((Level.ACCOUNT, account_id)), status=status)


# --- auto-start ---------------------------------------------------------------------------------------------------


@console_page
@require_http_methods(["GET", "POST"])
def auto_start(request):
    account_id = request.admin.account_id
    apps = list(account_data.installed_apps(account_id))
    status = 200
    if request.method == "POST":
        form = forms.AutoStartForm(request.POST, apps=apps, account_id=account_id)
        if form.is_valid():
            data = form.cleaned_data
            changes.set_auto_start(request.admin, data["app"], data["level"], data["target_id"], data["value"],
                                   auth.client_address(request))
            messages.success(request, "Saved.")
            return redirect("console:auto_start")
        messages.error(request, form.error_text())
        status = 400
    settings_rows = AutoStartSetting.objects.filter(account_id=account_id).select_related("app")
    account_rows = {row.app_id: row.auto_start for row in settings_rows if row.level == Level.ACCOUNT}
    overrides = [row for row in settings_rows if row.level != Level.ACCOUNT]
    users = paging.users_with_effective_settings(account_id, apps, request.GET)
    if users.refusal:
        messages.error(request, users.refusal)
        status = 400
    names = paging.listed_names(account_id, {row.target_id for row in overrides if row.level == Level.USER})
    for row in overrides:
        row.target_name = names.get(row.target_id, row.target_id) if row.level == Level.USER else row.target_id
    return _page(request, "console/auto_start.html", "auto_start", apps=apps, users=users, overrides=overrides,
                 app_rows=[(app, account_rows.get(app.id)) for app in apps],
                 groups=paging.account_groups(account_id), status=status)


# --- audit log ----------------------------------------------------------------------------------------------------


@console_page
@require_GET
def audit(request):
    form = forms.AuditFilterForm(request.GET)
    account_id = request.admin.account_id
    status, filters, page = 200, {}, paging.Page([], None)
    if form.is_valid():
        filters = form.filters()
        page = paging.audit_page(account_id, filters, form.cleaned_data["before"])
    else:
        messages.error(request, form.error_text())
        status = 400
    kinds = [(kind, display.kind_label(kind)) for kind in account_data.audit_kinds(account_id)]
    newest = _query_without_page(request)
    return _page(request, "console/audit.html", "audit", form=form, status=status,
                 rows=display.audit_rows(account_id, page.rows),
                 filtered_by=display.filters_in_words(account_id, filters),
                 apps=account_data.installed_apps(account_id), kinds=kinds, filters=filters,
                 query=newest, older=_page_query(newest, page.older), paged=bool(form.data.get("before")),
                 page_size=paging.AUDIT_PAGE_SIZE)


def _query_without_page(request):
    params = request.GET.copy()
    params.pop("before", None)
    return params.urlencode()


def _page_query(query, before):
    """The query string of the page after `before` (None when there is no such page)."""
    if before is None:
        return None
    return f"{query}&before={before}" if query else f"before={before}"


class _Echo:
    def write(self, value):
        return value


# The setting changes' target and values have columns of their own (what a spreadsheet sorts and filters by);
# everything else an entry recorded is in `detail`, as JSON.
AUDIT_COLUMNS = ["id", "when", "kind", "app", "meeting_uuid", "actor_user_id", "actor_role", "subject_user_id",
                 "outcome", "reason", "source", "source_address", "rtms_stream_id",
                 "target_level", "target_id", "previous", "new", "detail"]


# A spreadsheet runs a cell starting with one of these as a formula (=HYPERLINK(...) sends data away); OWASP's
# "CSV Injection" advice: prefix such a cell with an apostrophe so it is shown as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


# An auto-start decision names the setting that made it, which is the account of the user who joined: for a user
# of another account, in the host's meeting (filed under the host's account), another admin's setting and the ids
# of their account, group or user. Those keys are exported only to the account they name.
USER_ACCOUNTS_SETTING = ("user_account_id", "setting_level", "setting_target")


def _exported_detail(account_id, entry):
    """What the entry recorded that belongs to the viewing account: not the account id it was filed by (a column
    of its own would repeat it), nor another account's auto-start setting."""
    detail = {key: value for key, value in (entry.detail or {}).items() if key != "account_id"}
    if detail.get("user_account_id", account_id) != account_id:
        detail = {key: value for key, value in detail.items() if key not in USER_ACCOUNTS_SETTING}
    return detail


def _audit_row(account_id, entry):
    change = display.setting_change(entry)
    detail = _exported_detail(account_id, entry)
    values = [entry.id, entry.created.isoformat(), entry.kind,
              entry.app.client_id if entry.app_id and entry.app else "",
              entry.meeting_uuid, entry.actor_user_id, entry.actor_role, entry.subject_user_id, entry.outcome,
              entry.reason, entry.source, entry.source_address, entry.rtms_stream_id,
              change.level, change.target_id, change.previous, change.new,
              json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str) if detail else ""]
    return [_csv_cell(value) for value in values]


class ExportCutOff(Exception):
    """The export's session ended before its last chunk; the message says why."""


def _check_export_session(session_key, admin):
    """Raises ExportCutOff unless the session that started an export still holds for its admin, checked as a
    socket's push checks it (no Zoom call: signed in, not expired nor idle, the grant still there)."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    try:
        still = auth.session_holds(session, time.time())
    except auth.SessionEnded as ended:
        raise ExportCutOff(str(ended)) from None
    if (still.user_id, still.account_id) != (admin.user_id, admin.account_id):
        raise ExportCutOff("another admin signed in on this session")


def _audit_csv_chunk(session_key, admin, filters, before):
    """(CSV text of the export's next chunk, the cursor of the chunk after it, None after the last one). The chunk's
    connection goes back to the pool once it is read: a download may take minutes."""
    try:
        _check_export_session(session_key, admin)
        page = paging.audit_page(admin.account_id, filters, before, paging.AUDIT_CSV_CHUNK)
        writer = csv.writer(_Echo())
        return "".join(writer.writerow(_audit_row(admin.account_id, entry)) for entry in page.rows), page.older
    finally:
        connection.close()


async def _audit_csv_lines(session_key, admin, filters):
    """The export as it is read: the header at once, then a chunk at a time, each a session check and one short
    query in the request's thread. An async iterator, so that daphne sends each chunk as it comes: Django's ASGI
    handler reads a synchronous one to its end before the first byte (docs/CONSENT.md "The audit log").

    An export that cannot go on (its session ended, a chunk's read failed) raises out of the response, so that it
    ends unfinished: a CSV that merely stopped would look complete. Daphne closes the connection without chunked
    encoding's last chunk (zoomapp/asgi.py), and the browser marks the download failed."""
    yield csv.writer(_Echo()).writerow(AUDIT_COLUMNS)
    read_chunk = sync_to_async(_audit_csv_chunk)
    before, sent = None, 0
    while True:
        try:
            text, before = await read_chunk(session_key, admin, filters, before)
        except Exception as failure:
            why = str(failure) if isinstance(failure, ExportCutOff) else f"reading a chunk failed: {failure!r}"
            log.warning("audit export cut off", extra={"user": admin.user_id, "account": admin.account_id,
                                                       "why": why, "chunks_sent": sent})
            raise
        yield text
        sent += 1
        if before is None:
            return


@console_page
@require_GET
def audit_csv(request):
    form = forms.AuditFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse(form.error_text(), status=400, content_type="text/plain; charset=utf-8")
    filters = form.filters()
    changes.audit(request.admin, "audit_exported", address=auth.client_address(request),
                  reason="exported the audit log as CSV", detail={"filters": {
                      name: str(value) for name, value in filters.items()}})
    response = StreamingHttpResponse(_audit_csv_lines(request.session.session_key, request.admin, filters),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response


# --- live streams -------------------------------------------------------------------------------------------------


@console_page
@require_GET
def streams(request):
    account_id = request.admin.account_id
    return _page(request, "console/streams.html", "streams", snapshot=streams_feed.streams_snapshot(account_id),
                 concurrency_alerts=concurrency.recent_alerts(account_id))


@console_page
@require_GET
def stream_media_files(request, stream_id):
    """A stream's stored media segments, each a download (stream_media); the meetings page links here."""
    account_id = request.admin.account_id
    stream = account_data.account_stream(account_id, stream_id)
    if stream is None:
        raise Http404("No such stream in your account's meetings.")
    meeting = account_data.account_meeting(account_id, stream.meeting_uuid, stream.client_id)
    segments = [] if stream.media_deleted else list(MediaFile.objects.filter(stream=stream, stored=True))
    names = display.participant_names(stream)
    rows = [(segment, display.media_label(segment, names), display.zoom_time(segment.first_timestamp))
            for segment in segments]
    return _page(request, "console/stream_media.html", "meetings", stream=stream, meeting=meeting, rows=rows)


@console_page
@require_GET
def stream_media(request, stream_id, media_id):
    """One stored media segment (a WAV, or a frame segment's index) of a stream of the account's meetings, read
    from storage (rtms/storage.py: the filesystem or S3), whichever node wrote it."""
    stream = account_data.account_stream(request.admin.account_id, stream_id)
    media_file = stream and MediaFile.objects.filter(pk=media_id, stream=stream).first()
    if not media_file:
        raise Http404("No such media in your account's streams.")
    try:
        body, name = storage.open_media(media_file)
    except FileNotFoundError:
        raise Http404("This segment is not in storage: still being recorded, or deleted.") from None
    meeting = account_data.account_meeting(request.admin.account_id, stream.meeting_uuid, stream.client_id)
    changes.audit(request.admin, "media_downloaded", app=meeting.app, meeting_uuid=stream.meeting_uuid,
                  address=auth.client_address(request), reason=f"downloaded {name}",
                  detail={"rtms_stream_id": stream.rtms_stream_id, "media_id": media_file.pk,
                          "media_kind": media_file.kind, "file": name})
    return FileResponse(body, as_attachment=True, filename=name,
                        content_type="audio/wav" if name.endswith(".wav") else "application/x-ndjson")


# --- meetings and their data --------------------------------------------------------------------------------------


@console_page
@require_GET
def meetings(request):
    account_id = request.admin.account_id
    form = forms.MeetingSearchForm(request.GET)
    page, status, search = paging.Page([], None), 200, ""
    if form.is_valid():
        search = form.cleaned_data["q"]
        try:
            page = paging.meetings_page(account_id, search, form.cleaned_data["before"])
        except paging.NoSuchPage:
            messages.error(request, "This page link is not valid: start from the newest.")
            status = 400
    else:
        messages.error(request, form.error_text())
        status = 400
    rows = lifecycle.meeting_data_summary(page.rows)
    with_media = _streams_with_media([meeting for meeting, *_ in rows])
    names = account_data.user_names(account_id, {meeting.host_user_id for meeting, *_ in rows} | {
        stream.operator_id for streams in with_media.values() for stream in streams})
    rows = [(meeting, stats, live, kept, names.get(meeting.host_user_id, meeting.host_user_id),
             [(stream, names.get(stream.operator_id, stream.operator_id))
              for stream in with_media.get((meeting.app.client_id, meeting.uuid), [])])
            for meeting, stats, live, kept in rows]
    newest = _query_without_page(request)
    return _page(request, "console/meetings.html", "meetings", rows=rows, status=status, search=search,
                 matching=paging.meetings_matching(account_id, search).count() if status == 200 else 0,
                 query=newest, older=_page_query(newest, page.older), paged=bool(form.data.get("before")))


def _streams_with_media(meetings):
    """{(client id, meeting uuid): streams with media segments in storage, oldest first} of these meetings (each
    stream by its own app's meeting row, so another app's stream of the same meeting is not listed)."""
    in_storage = MediaFile.objects.filter(stream=OuterRef("pk"), stored=True)
    rows = StreamSession.objects.filter(Exists(in_storage), meeting_uuid__in={m.uuid for m in meetings},
                                        media_deleted=False).order_by("created")
    streams = {}
    for stream in rows.only("rtms_stream_id", "client_id", "meeting_uuid", "operator_id", "started_at", "created"):
        streams.setdefault((stream.client_id, stream.meeting_uuid), []).append(stream)
    return streams


@console_page
@require_POST
def delete_meeting_data(request):
    meeting = account_data.account_meeting(request.admin.account_id, request.POST.get("meeting_uuid", ""),
                                           request.POST.get("client_id", ""))
    if meeting is None:
        raise Http404("No such meeting in your account.")
    back = _meetings_page_posted(request)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the box to confirm the deletion.")
        return back
    try:
        deletion = lifecycle.delete_meeting_data(request.admin, meeting, auth.client_address(request))
    except lifecycle.StillStreaming:
        messages.error(request, "Streams are still running in this meeting; their data can be deleted once they stop.")
        return back
    if deletion.failed:
        messages.error(request, (
            f"Storage did not delete the data of {len(deletion.failed)} stream(s) of “{meeting}”: "
            + "; ".join(deletion.failed.values())
            + f". {len(deletion.erased)} other stream(s) were deleted. What was not deleted is still stored: "
            "try again, and if it fails again, tell this deployment's operator. The audit log records it."))
        return back
    messages.success(request,
                     f"Deleted the stored data of {len(deletion.erased)} stream(s) of “{meeting}”. "
                     "The audit log records it.")
    return back


def _meetings_page_posted(request):
    """Back to the meetings page the deletion was posted from (its search and page, when they are valid)."""
    form = forms.MeetingSearchForm(request.POST)
    url = reverse("console:meetings")
    if not form.is_valid():
        return redirect(url)
    query = urlencode({name: value for name, value in form.cleaned_data.items() if value})
    return redirect(f"{url}?{query}" if query else url)


# --- apps and retention -------------------------------------------------------------------------------------------


@console_page
@require_http_methods(["GET", "POST"])
def apps(request):
    """Read-only: the apps this account installed, with the URLs Zoom is configured with. Registering or changing
    an app is the operator's (manage.py register_zoom_app, the Django admin): docs/SECURITY.md."""
    admin = request.admin
    if request.method == "POST":
        log.warning("console app registration refused", extra={"account": admin.account_id, "admin": admin.user_id})
        response = render(request, "console/refused.html", {"reason": APPS_ARE_REGISTERED_BY_THE_OPERATOR}, status=405)
        response["Allow"] = "GET"
        return response
    retention = {r.app_id: r.days for r in AppRetention.objects.filter(account_id=admin.account_id)}
    rows = [(app, app_urls(app), retention.get(app.id)) for app in account_data.installed_apps(admin.account_id)]
    return _page(request, "console/apps.html", "apps", rows=rows, default_retention=settings.MEDIA_RETENTION_DAYS)


@console_page
@require_POST
def set_retention(request):
    form = forms.RetentionForm(request.POST, apps=account_data.installed_apps(request.admin.account_id))
    if form.is_valid():
        changes.set_retention(request.admin, form.cleaned_data["app"], form.cleaned_data["days"],
                              auth.client_address(request))
        messages.success(request, "Saved.")
    else:
        messages.error(request, form.error_text())
    return redirect("console:apps")


@require_GET
def home(request):
    return redirect("console:sharing")
