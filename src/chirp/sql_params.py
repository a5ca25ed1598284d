"""One placeholder style for every backend: `?` (positional) and `:name` (named).

SQLite speaks both natively. PostgreSQL's driver wants `%s` / `%(name)s`, so queries are
rewritten for it, once each (cached): a small lexer skips string literals, quoted
identifiers, dollar-quoted bodies and comments, keeps PostgreSQL's `::type` casts, and
doubles every other `%` so it reaches the server as itself.
"""

from __future__ import annotations

import functools
import re

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


class PlaceholderError(ValueError):
    """A query mixes `?` with `:name`, or uses a driver's own placeholder (`%s`)."""


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """`sql` with `?` → `%s` and `:name` → `%(name)s`, literal `%` doubled."""
    out: list[str] = []
    styles: set[str] = set()
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        end = _skip_literal(sql, i)
        if end > i:
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif ch == "?":
            styles.add("?")
            out.append("%s")
            i += 1
        elif ch == ":" and sql.startswith("::", i):
            out.append("::")
            i += 2
        elif ch == ":" and (match := _NAME.match(sql, i + 1)) and (i == 0 or sql[i - 1] != ":"):
            styles.add(":name")
            out.append(f"%({match.group()})s")
            i = match.end()
        elif ch == "%":
            if sql.startswith(("%s", "%("), i):
                raise PlaceholderError(
                    f"query uses the driver's placeholder {sql[i : i + 2]!r}: "
                    "chirp queries use ? (positional) or :name (named) on every backend"
                )
            out.append("%%")
            i += 1
        else:
            out.append(ch)
            i += 1
    if len(styles) > 1:
        raise PlaceholderError("query mixes ? and :name placeholders: use one style per query")
    return "".join(out)


def _skip_literal(sql: str, i: int) -> int:
    """The end of the string, identifier, dollar-quoted body or comment starting at `i`
    (`i` itself when none starts there)."""
    ch = sql[i]
    if ch in "'\"":
        escapes = ch == "'" and i > 0 and sql[i - 1] in "eE" and not _NAME.match(sql[i - 2 : i] or " ")
        j = i + 1
        while j < len(sql):
            if escapes and sql[j] == "\\":
                j += 2
                continue
            if sql[j] == ch:
                if sql.startswith(ch * 2, j):  # a doubled quote inside the literal
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(sql)
    if sql.startswith("--", i):
        newline = sql.find("\n", i)
        return len(sql) if newline < 0 else newline
    if sql.startswith("/*", i):
        close = sql.find("*/", i + 2)
        return len(sql) if close < 0 else close + 2
    if ch == "$" and (tag := _DOLLAR_TAG.match(sql, i)):
        close = sql.find(tag.group(), tag.end())
        return len(sql) if close < 0 else close + len(tag.group())
    return i
