"""Runs a gunicorn-style configuration file and returns the names it defines.

The Rust core calls :func:`load_config` once at startup; it validates and
converts every value itself, so this module only executes the file and
decides which module-level names are candidates for settings, with
gunicorn's rules: private names (``_x``) and modules are skipped. Names bound
by ``import`` statements are skipped too unless they are known setting names
(``from common import bind`` still sets ``bind``), so that ``from os import
environ`` is not mistaken for a misspelt setting.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Collection
from types import ModuleType
from typing import Any, Callable


class ConfigFileError(Exception):
    """The configuration file cannot be found or read; the message says which."""


_MODULE_NAME = "__config__"
_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


def load_config(location: str, known: Collection[str] = ()) -> dict[str, object]:
    """Execute ``location`` (a path, ``file:PATH`` or ``python:MODULE``) and return its settings.

    ``known`` holds every setting and hook name; it only decides whether an
    imported name is kept.
    """
    if location.startswith("python:"):
        module = _import_module(location[len("python:") :])
    else:
        module = _exec_file(location.removeprefix("file:"))
    imported = _imported_names(module)
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and (name in known or name not in imported)
    }


def arity(func: Callable[..., Any]) -> int:
    """Positional parameters of ``func``, counted as gunicorn counts a hook's arity."""
    params = inspect.signature(func).parameters.values()
    return sum(1 for p in params if p.kind in _POSITIONAL)


def import_callable(path: str) -> object:
    """``"package.module.func"`` as gunicorn accepts it for a hook given as a string."""
    module_name, dot, attr = path.rpartition(".")
    if not dot or not module_name:
        raise ConfigFileError(f"{path!r} is not an import path (module.function)")
    return getattr(importlib.import_module(module_name), attr)


def describe_failure(exc: BaseException) -> str:
    """A one-line message for our own errors, the full traceback for the file's."""
    if isinstance(exc, ConfigFileError):
        return str(exc)
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _import_module(name: str) -> ModuleType:
    # gunicorn chdirs (putting the cwd first on sys.path) before it reads the
    # config, so python:MODULE is found next to where the server was started.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    return importlib.import_module(name)


def _exec_file(path: str) -> ModuleType:
    if not os.path.exists(path):
        raise ConfigFileError(f"{path!r} doesn't exist")
    # Any extension works, as in gunicorn; .py is merely the expected one.
    loader = importlib.machinery.SourceFileLoader(_MODULE_NAME, path)
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path, loader=loader)
    if spec is None:
        raise ConfigFileError(f"{path!r} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    loader.exec_module(module)
    return module


def _imported_names(module: ModuleType) -> set[str]:
    """Names the module's top-level code binds with ``import`` (not inside functions)."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return set()
    names: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
        elif not isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        ):
            for field in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(getattr(node, field, []))
    return names
