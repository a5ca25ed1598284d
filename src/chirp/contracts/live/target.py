"""The module `chirp check --live` asks `chirp run` to serve: the user's app, plus one route.

`CHIRP_LIVE_TARGET` names the app (`module:attr` or `module:factory()`). When
`CHIRP_LIVE_ERROR_PATH` is set, a GET route at that (random, unguessable) path raises, so the
live check can see what a real unhandled error looks like from outside. Nothing else about
the app changes: same config, middleware, hooks and server.
"""

from __future__ import annotations

import os
from typing import Any

from pounce.importer import import_app


def _load() -> Any:
    path = os.environ.get("CHIRP_LIVE_TARGET")
    if not path:
        raise RuntimeError("CHIRP_LIVE_TARGET is not set; this module is run by `chirp check --live`")
    target = import_app(path)
    if getattr(target, "import_path", "") is None:
        target.import_path = path
    error_path = os.environ.get("CHIRP_LIVE_ERROR_PATH")
    if error_path and not getattr(target, "frozen", True):

        def chirp_live_check_forced_error() -> str:
            raise RuntimeError(f"forced error {error_path.rsplit('/', 1)[-1]}")

        target.route(error_path, name="chirp.live_check.forced_error")(chirp_live_check_forced_error)
    return target


app = _load()
