"""The report flags `chirp check` and `pounce check` share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from chirp.contracts.render import FORMATS


def report_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--warnings-as-errors`, `--fail-on`, `--format` and `--output`."""
    options = [
        click.option("--warnings-as-errors", is_flag=True, help="Fail on warnings too."),
        click.option(
            "--fail-on",
            type=click.Choice(["error", "warning", "info"]),
            help="Lowest severity that fails (default error).",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            default="text",
            show_default=True,
            help="Output format.",
        ),
        click.option(
            "--output", "-o", type=click.Path(dir_okay=False), help="Write the report here instead of stdout."
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f
