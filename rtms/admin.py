from django.contrib import admin

from rtms.models import MediaFile, StreamSession, StreamTransition


class TransitionInline(admin.TabularInline):
    model = StreamTransition
    extra = 0
    can_delete = False
    readonly_fields = ("at", "previous", "state", "reason", "stop_reason", "worker")


class MediaFileInline(admin.TabularInline):
    model = MediaFile
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "user_id", "path", "bytes", "frames", "first_timestamp", "last_timestamp")


@admin.register(StreamSession)
class StreamSessionAdmin(admin.ModelAdmin):
    list_display = ("rtms_stream_id", "meeting_uuid", "client_id", "operator_id", "state", "stop_reason_name",
                    "owner_worker", "transcript_count", "reconnects", "created")
    list_filter = ("state", "desired_state", "client_id")
    search_fields = ("rtms_stream_id", "meeting_uuid", "operator_id")
    inlines = [TransitionInline, MediaFileInline]
    readonly_fields = [field.name for field in StreamSession._meta.fields]
