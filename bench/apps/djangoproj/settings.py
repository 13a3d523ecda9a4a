"""Settings for the bench's Django project: production-like (DEBUG off), one SQLite database."""

from __future__ import annotations

import os
from pathlib import Path

_BENCH = Path(__file__).resolve().parents[2]

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djangoproj.urls"
WSGI_APPLICATION = "djangoproj.wsgi.application"
INSTALLED_APPS = ["djangoproj"]
# What `startproject` keeps for a JSON API without sessions or auth.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DJANGO_DB", str(_BENCH / ".data" / "django.sqlite3")),
        # Persistent: one connection per worker thread for its lifetime (a new one costs ~130 µs).
        "CONN_MAX_AGE": None,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
LOGGING_CONFIG = None
