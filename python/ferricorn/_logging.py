"""gunicorn's logging-config settings, applied to Python's ``logging`` before the app loads.

ferricorn's own error and access log lines are written by Rust, not through ``logging``; these
settings configure the loggers the application (and its libraries) use, in the master before
the first fork, so every worker inherits the configuration.
"""

from __future__ import annotations

import ast
import json
import logging.config
from typing import Any


def configure(dict_repr: str, json_path: str | None, ini_path: str | None) -> str | None:
    """Applies the first of logconfig_dict, logconfig_json, logconfig that is set (gunicorn's
    order). Returns the setting that failed and why, as ``"name: reason"``, or None."""
    if dict_repr and dict_repr != "{}":
        try:
            config: Any = ast.literal_eval(dict_repr)
        except (ValueError, SyntaxError) as exc:
            return f"logconfig_dict: not a literal dict ({exc}); use strings for classes"
        return _apply("logconfig_dict", lambda: logging.config.dictConfig(config))
    if json_path:
        try:
            with open(json_path) as f:
                config = json.load(f)
        except (OSError, ValueError) as exc:
            return f"logconfig_json = {json_path!r}: {exc}"
        return _apply(f"logconfig_json = {json_path!r}", lambda: logging.config.dictConfig(config))
    if ini_path:
        return _apply(
            f"logconfig = {ini_path!r}",
            lambda: logging.config.fileConfig(ini_path, disable_existing_loggers=False),
        )
    return None


def _apply(what: str, apply: Any) -> str | None:
    try:
        apply()
    except Exception as exc:  # noqa: BLE001 - any failure is a configuration error
        return f"{what}: {type(exc).__name__}: {exc}"
    return None
