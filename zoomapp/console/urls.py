from django.urls import path

from zoomapp.console import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("signin", views.signin, name="signin"),
    path("signin/<str:client_id>", views.signin_start, name="signin_start"),
    path("signout", views.signout, name="signout"),
    path("sharing", views.sharing, name="sharing"),
    path("auto-start", views.auto_start, name="auto_start"),
    path("audit", views.audit, name="audit"),
    path("audit.csv", views.audit_csv, name="audit_csv"),
    path("streams", views.streams, name="streams"),
    path("streams/<str:stream_id>/media", views.stream_media_files, name="stream_media_files"),
    path("streams/<str:stream_id>/media/<int:media_id>", views.stream_media, name="stream_media"),
    path("meetings", views.meetings, name="meetings"),
    path("meetings/delete-data", views.delete_meeting_data, name="delete_meeting_data"),
    path("apps", views.apps, name="apps"),
    path("apps/retention", views.set_retention, name="set_retention"),
]
