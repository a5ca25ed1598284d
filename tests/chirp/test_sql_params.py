"""The placeholder rewrite for PostgreSQL: what is a parameter and what is left alone."""

from __future__ import annotations

import pytest

from chirp.sql_params import PlaceholderError, to_pyformat


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
        ("SELECT * FROM t WHERE a = :a AND b = :b_2", "SELECT * FROM t WHERE a = %(a)s AND b = %(b_2)s"),
        ("SELECT :v::int", "SELECT %(v)s::int"),
        ("SELECT a::text FROM t WHERE b = ?", "SELECT a::text FROM t WHERE b = %s"),
        ("SELECT '50% ?:x', ?", "SELECT '50%% ?:x', %s"),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),
        ('SELECT "col?" FROM t WHERE x = ?', 'SELECT "col?" FROM t WHERE x = %s'),
        ("SELECT E'a\\' ?', ?", "SELECT E'a\\' ?', %s"),
        ("SELECT $$ ? :a $$, $tag$ ? $tag$, ?", "SELECT $$ ? :a $$, $tag$ ? $tag$, %s"),
        ("SELECT 1 -- ? :a\nWHERE x = ?", "SELECT 1 -- ? :a\nWHERE x = %s"),
        ("SELECT /* ? */ ?", "SELECT /* ? */ %s"),
        ("SELECT a % ?", "SELECT a %% %s"),
        ("SELECT arr[1:2] FROM t WHERE id = ?", "SELECT arr[1:2] FROM t WHERE id = %s"),
        ("SELECT $1", "SELECT $1"),
    ],
)
def test_rewrite(sql: str, expected: str) -> None:
    assert to_pyformat(sql) == expected


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT ? , :a", "mixes ? and :name"),
        ("SELECT * FROM t WHERE a = %s", "the driver's placeholder '%s'"),
        ("SELECT * FROM t WHERE a = %(a)s", "the driver's placeholder '%('"),
    ],
)
def test_refused(sql: str, message: str) -> None:
    with pytest.raises(PlaceholderError) as raised:
        to_pyformat(sql)
    assert message in str(raised.value)
