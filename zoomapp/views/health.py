from django.http import JsonResponse
from django.views.decorators.http import require_GET

from zoomapp import health


@require_GET
def healthz(request):
    parts, healthy = health.report(deep=request.GET.get("deep") == "1")
    body = {"status": "ok" if healthy else "unhealthy", **parts}
    if not healthy:
        body["failing"] = [name for name, value in parts.items() if not value.startswith("ok")]
    return JsonResponse(body, status=200 if healthy else 503)
