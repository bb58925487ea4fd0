from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def metrics(request):
    """Prometheus scrape endpoint of the web process (workers serve theirs on RTMS_METRICS_PORT)."""
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
