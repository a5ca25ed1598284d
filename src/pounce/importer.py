"""Resolve `module:attr` or `module:factory()` to an ASGI callable."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from pounce.errors import AppImportError, ConfigurationError


def import_app(path: str) -> Any:
    """Import the app named by `path` (`module:attr`, or `dir/file:attr` / `dir/file.py:attr`),
    with the current directory (or the file's directory) on `sys.path`.

    `attr` defaults to `app`; `module:factory()` calls the factory with no arguments. A
    `ConfigurationError` the app raises while it is built (a bad setting or `CHIRP_*` value)
    passes through as itself: it names the setting and the fix, which is all the user needs.
    """
    if not path or path.startswith(":"):
        raise AppImportError(f"invalid app path {path!r}", "use module:attr, for example myapp:app")
    module_name, _, attr = path.partition(":")
    attr = attr or "app"
    directory = os.getcwd()
    if "/" in module_name or module_name.endswith(".py"):
        # `examples/hello:app` or `examples/hello.py:app`: a file path, imported by its name
        # with its own directory on sys.path.
        file_path = os.path.abspath(module_name if module_name.endswith(".py") else module_name + ".py")
        directory, module_name = os.path.dirname(file_path), os.path.basename(file_path)[:-3]
    call = attr.endswith("()")
    if call:
        attr = attr[:-2]
    cwd = directory
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppImportError(
                f"no module named {module_name!r} (looked in {cwd} and sys.path)",
                f"run from the directory that holds {module_name.split('.')[0]}.py, or fix the module name",
            ) from exc
        raise AppImportError(
            f"importing {module_name!r} failed: {exc}", f"install the missing package {exc.name!r}"
        ) from exc
    except ConfigurationError:
        raise
    except Exception as exc:
        raise AppImportError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}",
            "fix the error in the module; run `python -c 'import " + module_name + "'` for the traceback",
        ) from exc
    try:
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise AppImportError(
            f"module {module_name!r} has no attribute {attr!r}",
            f"name the ASGI app object, for example {module_name}:app",
        ) from None
    if call:
        try:
            obj = obj()
        except ConfigurationError:
            raise
        except Exception as exc:
            raise AppImportError(
                f"app factory {path!r} raised {type(exc).__name__}: {exc}", "fix the factory"
            ) from exc
    if not callable(obj):
        raise AppImportError(
            f"{path!r} is a {type(obj).__name__}, not an ASGI application",
            "point at the App instance or an ASGI callable (scope, receive, send)",
        )
    return obj
