from __future__ import annotations

from django.urls import path

from djangoproj import views

urlpatterns = [path("rows", views.rows)]
