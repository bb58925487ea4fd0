from django.http import JsonResponse
from django.views.decorators.http import require_GET

from zoomapp import health, operator_access


@require_GET
def healthz(request):
    """Public for load balancers: which part fails, never why. Operators (zoomapp/operator_access.py) also get the
    reasons, and only they may ask for ?deep=1, which sends a task and waits for a worker."""
    deep = request.GET.get("deep") == "1"
    if deep and (refused := operator_access.refusal(request)):
        return refused
    parts, healthy = health.report(deep=deep)
    if not operator_access.is_operator(request):
        parts = {name: "ok" if value.startswith("ok") else "error" for name, value in parts.items()}
    body = {"status": "ok" if healthy else "unhealthy", **parts}
    if not healthy:
        body["failing"] = [name for name, value in parts.items() if not value.startswith("ok")]
    return JsonResponse(body, status=200 if healthy else 503)
