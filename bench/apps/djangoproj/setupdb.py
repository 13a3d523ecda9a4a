"""Create the ``django_orm`` row's SQLite database with 50 rows (run once, before any load).

``python -m djangoproj.setupdb`` from bench/apps; it replaces an existing database file.
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoproj.settings")

import django  # noqa: E402


def main() -> int:
    from django.conf import settings

    db = Path(settings.DATABASES["default"]["NAME"])
    db.parent.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    django.setup()
    from django.core.management import call_command

    from djangoproj.models import Item

    call_command("migrate", run_syncdb=True, verbosity=0)
    Item.objects.bulk_create(
        Item(name=f"Item number {i}", price=Decimal(i) * Decimal("1.25") + 3, in_stock=i % 3 != 0)
        for i in range(1, 51)
    )
    print(f"{db}: {Item.objects.count()} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
