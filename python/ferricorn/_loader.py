"""Finds the WSGI application named on the command line, with gunicorn's rules.

``module:name`` imports ``module`` and takes ``name``; ``module`` alone means
``module:application``; ``module:factory(args)`` calls ``factory`` with literal arguments.
Errors in the *spec* raise :class:`AppImportError` with a one-line explanation; errors raised
by the app's own import keep their traceback.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
import traceback
from typing import Any, Callable


class AppImportError(Exception):
    """The app spec does not name a usable application."""


def prepare_path(pythonpath: list[str]) -> None:
    """Put the working directory first on ``sys.path``, then each ``--pythonpath`` entry."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for entry in reversed(pythonpath):
        path = os.path.abspath(entry)
        if path not in sys.path:
            sys.path.insert(0, path)


def _parse_target(target: str) -> tuple[str, list[Any] | None, dict[str, Any] | None]:
    try:
        expression = ast.parse(target, mode="eval").body
    except SyntaxError:
        raise AppImportError(
            f"Failed to parse {target!r} as an attribute name or function call."
        ) from None
    if isinstance(expression, ast.Name):
        return expression.id, None, None
    if isinstance(expression, ast.Call):
        if not isinstance(expression.func, ast.Name):
            raise AppImportError(f"Function reference must be a simple name: {target!r}")
        try:
            args = [ast.literal_eval(arg) for arg in expression.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expression.keywords if kw.arg}
        except ValueError:
            raise AppImportError(
                f"Failed to parse arguments as literal values: {target!r}"
            ) from None
        return expression.func.id, args, kwargs
    raise AppImportError(f"Failed to parse {target!r} as an attribute name or function call.")


def load(spec: str) -> Callable[..., Any]:
    """Import and return the application callable named by ``spec``."""
    module_name, _, target = spec.partition(":")
    target = target or "application"
    if not module_name:
        raise AppImportError(f"No module given in {spec!r}; expected MODULE:APP, e.g. myapp:app")
    name, args, kwargs = _parse_target(target)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name and not module_name.startswith(f"{e.name}."):
            raise  # the app's own import of something else failed: keep its traceback
        hint = ""
        if module_name.endswith(".py") and os.path.exists(module_name):
            hint = f" Did you mean '{module_name[:-3].replace('/', '.')}:{target}'?"
        raise AppImportError(
            f"No module named {module_name!r} (searched from {os.getcwd()}).{hint}"
        ) from None
    try:
        app = getattr(module, name)
    except AttributeError:
        raise AppImportError(f"Failed to find attribute {name!r} in {module_name!r}.") from None
    if args is not None:
        try:
            app = app(*args, **(kwargs or {}))
        except TypeError as e:
            raise AppImportError(f"Error calling the application factory {target!r}: {e}") from e
    if app is None:
        raise AppImportError(f"Failed to find application object: {target!r}")
    if not callable(app):
        raise AppImportError(f"Application object {spec!r} must be callable.")
    return app


def describe_failure(exc: BaseException) -> str:
    """The text the error log shows for a failed load: a sentence, or the full traceback."""
    if isinstance(exc, AppImportError):
        return str(exc)
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
