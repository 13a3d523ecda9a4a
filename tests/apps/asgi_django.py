"""A minimal Django project in one module, served through ``get_asgi_application()``.

The settings, URLconf and views all live here (``ROOT_URLCONF = __name__``).
"""

from __future__ import annotations

import asyncio
import json

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="ferricorn-asgi-tests-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        USE_TZ=True,
    )
    django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


async def async_view(request):
    await asyncio.sleep(0)
    return JsonResponse(
        {
            "view": "async",
            "method": request.method,
            "path": request.path,
            "query": request.GET.get("q"),
            "header": request.headers.get("X-Probe"),
            "scheme": request.scheme,
        }
    )


def sync_view(request, number):
    return HttpResponse(f"sync view got {number}", content_type="text/plain")


@csrf_exempt
async def post_json(request):
    data = json.loads(request.body)
    return JsonResponse({"sum": sum(data["numbers"]), "length": len(request.body)}, status=201)


async def streamed(request):
    async def parts():
        for i in range(3):
            yield f"part {i};".encode()

    return StreamingHttpResponse(parts(), content_type="text/plain")


def not_found(request):
    return HttpResponse("nothing here", status=404)


urlpatterns = [
    path("async/", async_view),
    path("sync/<int:number>/", sync_view),
    path("json/", post_json),
    path("stream/", streamed),
    path("missing/", not_found),
]

application = get_asgi_application()
