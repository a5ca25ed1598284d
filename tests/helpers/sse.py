"""Read Server-Sent Events from a streaming httpx response, frame by frame."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx


@dataclass
class Frame:
    """One blank-line-terminated block: an event (fields) or a comment."""

    raw: str
    received: float
    fields: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_comment(self) -> bool:
        return all(line.startswith(":") for line in self.raw.split("\n"))

    def get(self, name: str) -> str | None:
        values = [v for k, v in self.fields if k == name]
        return "\n".join(values) if values else None

    @property
    def data(self) -> str | None:
        return self.get("data")

    @property
    def event(self) -> str | None:
        return self.get("event")


def frames(response: httpx.Response) -> Iterator[Frame]:
    """Yield frames as their bytes arrive (no buffering beyond one frame)."""
    buffer = ""
    for chunk in response.iter_raw():
        buffer += chunk.decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            frame = Frame(block, time.monotonic())
            for line in block.split("\n"):
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                frame.fields.append((name, value[1:] if value.startswith(" ") else value))
            yield frame


def events(response: httpx.Response) -> Iterator[Frame]:
    """Only the event frames (heartbeat comments skipped)."""
    return (f for f in frames(response) if not f.is_comment)
