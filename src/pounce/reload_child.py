"""Entry point of the child process that `--reload` restarts on each change."""

from __future__ import annotations

import json
import os
import sys

from pounce.config import ServerConfig
from pounce.importer import import_app
from pounce.logs import configure_logging
from pounce.runner import serve_imported


def main() -> None:
    config = ServerConfig.from_mapping(json.loads(os.environ["POUNCE_CHILD_CONFIG"]))
    configure_logging(config.log_level, "text")
    sys.exit(serve_imported(import_app(config.app), config))


if __name__ == "__main__":
    main()
