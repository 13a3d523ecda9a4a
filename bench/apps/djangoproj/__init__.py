"""A one-view Django project for the ``django_orm`` row of bench/run.py.

``GET /rows`` reads 20 rows from SQLite through the ORM and returns them as JSON, with a
persistent database connection (``CONN_MAX_AGE = None``), as a deployed Django site would run.
The database is created once before a run by ``python -m djangoproj.setupdb`` (outside the timed
part); its path is ``$BENCH_DJANGO_DB`` (bench/.data/django.sqlite3 by default).
"""
