"""ferricorn: a Gunicorn-compatible application server for Python web apps, written in Rust."""

from ferricorn._ferricorn import __version__, run

__all__ = ["__version__", "run"]
