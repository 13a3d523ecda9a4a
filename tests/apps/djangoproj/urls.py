from django.urls import path

from djangoproj import views

urlpatterns = [
    path("", views.index, name="index"),
    path("contact/", views.contact, name="contact"),
    path("upload/", views.upload, name="upload"),
    path("go/", views.go, name="go"),
    path("target/", views.target, name="target"),
    path("cookie/set/", views.cookie_set, name="cookie-set"),
    path("cookie/get/", views.cookie_get, name="cookie-get"),
    path("visits/", views.visits, name="visits"),
    path("stream/", views.stream, name="stream"),
    path("source/", views.source, name="source"),
    path("café/", views.cafe, name="cafe"),
    path("boom/", views.boom, name="boom"),
]
