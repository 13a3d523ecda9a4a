"""A minimal real Django project, served as ``djangoproj.wsgi:application`` from tests/apps."""
