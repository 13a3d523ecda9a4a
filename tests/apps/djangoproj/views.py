import hashlib
from pathlib import Path

from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST


def index(request):
    return HttpResponse("hello from django")


def contact(request):
    """GET renders a form with a CSRF token; POST (CSRF-checked by middleware) thanks the sender."""
    if request.method == "POST":
        return JsonResponse(
            {"thanks": request.POST["name"], "topics": request.POST.getlist("topic")}
        )
    return render(request, "contact.html")


@require_POST
def upload(request):
    f = request.FILES["document"]
    data = f.read()
    return JsonResponse(
        {
            "name": f.name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "note": request.POST.get("note"),
        }
    )


def go(request):
    return redirect("target")


def target(request):
    return HttpResponse("you made it")


def cookie_set(request):
    response = HttpResponse("cookie set")
    response.set_cookie("flavour", request.GET["flavour"])
    return response


def cookie_get(request):
    return JsonResponse({"flavour": request.COOKIES.get("flavour")})


def visits(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"visits": request.session["visits"]})


def stream(request):
    count = int(request.GET.get("n", "5"))
    return StreamingHttpResponse(
        (f"row {i}\n" for i in range(count)), content_type="text/plain"
    )


def source(request):
    """A FileResponse, which Django hands to the server's wsgi.file_wrapper."""
    return FileResponse(open(Path(__file__), "rb"), content_type="text/x-python")


def cafe(request):
    return HttpResponse("unicode route")


def boom(request):
    raise RuntimeError("django-boom-marker")
