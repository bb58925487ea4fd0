from django.contrib import admin

from zoomapp.webhooks.models import WebhookDelivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Operators see every verified delivery, its outcome and how many times Zoom retried it."""

    list_display = ("received_at", "app", "event", "outcome", "duplicates", "meeting_uuid", "rtms_stream_id")
    list_filter = ("outcome", "event", "app")
    search_fields = ("rtms_stream_id", "meeting_uuid", "event")
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
