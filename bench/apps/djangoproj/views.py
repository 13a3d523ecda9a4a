"""``GET /rows``: 20 rows through the ORM, as JSON."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from djangoproj.models import Item


def rows(request: HttpRequest) -> JsonResponse:
    items = [
        {"id": it.id, "name": it.name, "price": str(it.price), "in_stock": it.in_stock}
        for it in Item.objects.order_by("id")[:20]
    ]
    return JsonResponse({"items": items})
