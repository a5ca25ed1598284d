"""One JSON encoding for every value chirp sends: responses, SSE events, WebSocket messages
and `app.emit` payloads.

Beyond what `json` takes, the values handlers commonly hold are written the usual way:
datetimes, dates and times as ISO 8601, `UUID` and `Decimal` as strings, enums as their value,
sets and frozensets as lists. Anything else is an error, never its `repr`: an object's repr
can carry what the client must not see. NaN and infinities are refused: they are not JSON.
"""

from __future__ import annotations

import datetime
import enum
import json
from typing import Any


def _known(value: Any) -> Any:
    import decimal  # loaded when a response first holds a value json does not know
    import uuid

    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(
        f"{type(value).__name__} is not JSON-serialisable: convert it to a dict, list, str, "
        "number, bool or None (datetime, date, time, UUID, Decimal, Enum and set are converted for you)"
    )


def dumps(value: Any) -> str:
    """`value` as compact JSON text; `TypeError` or `ValueError` naming what cannot be written."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_known)
