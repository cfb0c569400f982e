"""``storage.*`` against real SQLite (in memory and on disk): JSON round trips, key rules, the
byte quota and its accounting, isolation between plugins, and literal prefix listing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import InvalidInputError, ResourceLimitExceededError
from plugport.runtime._db import RuntimeDatabase
from plugport.runtime.capabilities.storage import MAX_KEYS_LIMIT, PluginStorage

PLUGIN = "acme.notes"
BIG = 1_000_000  # a quota no test reaches unless it means to


def size(key: str, value: Any) -> int:
    """What one entry counts against the quota, computed independently of the store."""
    text = json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return len(key.encode()) + len(text.encode())


@pytest.fixture(params=["memory", "file"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RuntimeDatabase]:
    path = ":memory:" if request.param == "memory" else tmp_path / "rt.sqlite"
    database = RuntimeDatabase(path)
    yield database
    database.close()


@pytest.fixture
def store(db: RuntimeDatabase) -> PluginStorage:
    return PluginStorage(db)


def snapshot(store: PluginStorage, plugin: str = PLUGIN) -> tuple[list[str], dict[str, Any], int]:
    """Everything a refused call must leave alone."""
    keys = store.keys(plugin, limit=MAX_KEYS_LIMIT)
    return keys, {k: store.get(plugin, k) for k in keys}, store.usage(plugin)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -17,
        2**70,
        1.5,
        -0.25,
        1e300,
        "",
        "plain",
        "ünïcödé 日本語 😀",
        'quote " and backslash \\ and newline \n',
        [],
        [1, "two", None, [3.0], {"four": 4}],
        {},
        {"nested": {"deep": [True, {"x": None}]}, "ключ": "значение"},
    ],
)
def test_every_json_type_round_trips(store: PluginStorage, value: Any) -> None:
    used = store.set(PLUGIN, "k", value, quota_bytes=BIG)

    got = store.get(PLUGIN, "k")
    assert got == value
    assert type(got) is type(value)  # True stays a bool, 0 stays an int
    assert used == store.usage(PLUGIN) == size("k", value)


def test_missing_key_returns_default(store: PluginStorage) -> None:
    assert store.get(PLUGIN, "absent") is None
    assert store.get(PLUGIN, "absent", default={"d": 1}) == {"d": 1}


def test_tuples_are_stored_as_lists(store: PluginStorage) -> None:
    store.set(PLUGIN, "k", (1, (2, 3)), quota_bytes=BIG)

    assert store.get(PLUGIN, "k") == [1, [2, 3]]


@pytest.mark.parametrize("key", ["ключ", "日本語", "😀", "a b", "%_*?[", "x" * 256, "\u00a0nbsp"])
def test_unicode_keys_round_trip_and_count_utf8_bytes(store: PluginStorage, key: str) -> None:
    store.set(PLUGIN, key, "v", quota_bytes=BIG)

    assert store.get(PLUGIN, key) == "v"
    assert store.keys(PLUGIN) == [key]
    assert store.usage(PLUGIN) == len(key.encode()) + len(b'"v"')


# --- isolation -----------------------------------------------------------------------------


def test_plugins_never_see_each_others_keys(store: PluginStorage) -> None:
    store.set("a.x", "shared", "from x", quota_bytes=BIG)
    store.set("a.y", "shared", "from y", quota_bytes=BIG)
    store.set("a.y", "only-y", 1, quota_bytes=BIG)

    assert store.get("a.x", "shared") == "from x"
    assert store.get("a.x", "only-y") is None
    assert store.keys("a.x") == ["shared"]
    assert store.keys("a.y") == ["only-y", "shared"]
    assert store.keys("a") == []
    assert store.usage("a.x") == size("shared", "from x")

    assert store.delete("a.x", "only-y") is False
    assert store.clear("a.x") == 1
    assert store.get("a.y", "shared") == "from y"
    assert store.usage("a.y") == size("shared", "from y") + size("only-y", 1)


def test_quota_is_per_plugin(store: PluginStorage) -> None:
    quota = size("k", "v")
    store.set("a.x", "k", "v", quota_bytes=quota)

    assert store.set("a.y", "k", "v", quota_bytes=quota) == quota


# --- quota ---------------------------------------------------------------------------------


def test_write_reaching_quota_exactly_is_allowed_one_more_byte_is_refused(
    store: PluginStorage,
) -> None:
    quota = size("a", "xxxx") + size("b", "yy")
    store.set(PLUGIN, "a", "xxxx", quota_bytes=quota)

    assert store.set(PLUGIN, "b", "yy", quota_bytes=quota) == quota
    before = snapshot(store)
    with pytest.raises(ResourceLimitExceededError) as info:
        store.set(PLUGIN, "b", "yyy", quota_bytes=quota)

    assert info.value.plugin == PLUGIN
    assert info.value.limit == "storage"
    assert f"quota of {quota} bytes" in str(info.value)
    assert f"uses {quota}, this write needs 1 more" in str(info.value)
    assert snapshot(store) == before


def test_new_key_over_quota_is_refused_and_nothing_changes(store: PluginStorage) -> None:
    store.set(PLUGIN, "old", [1, 2], quota_bytes=20)
    before = snapshot(store)

    with pytest.raises(ResourceLimitExceededError, match="quota of 20 bytes") as info:
        store.set(PLUGIN, "new", "x" * 20, quota_bytes=20)

    used, needs = size("old", [1, 2]), size("new", "x" * 20)
    assert f"uses {used}, this write needs {needs} more" in str(info.value)
    assert snapshot(store) == before
    assert store.get(PLUGIN, "new") is None


def test_refused_overwrite_keeps_the_old_value(store: PluginStorage) -> None:
    store.set(PLUGIN, "k", "small", quota_bytes=12)
    before = snapshot(store)

    with pytest.raises(ResourceLimitExceededError) as info:
        store.set(PLUGIN, "k", "much larger", quota_bytes=12)

    grows = size("k", "much larger") - size("k", "small")
    assert f"this write needs {grows} more" in str(info.value)
    assert snapshot(store) == before
    assert store.get(PLUGIN, "k") == "small"


def test_overwrite_counts_only_the_difference(store: PluginStorage) -> None:
    store.set(PLUGIN, "other", 1, quota_bytes=BIG)
    base = size("other", 1)

    for value in ["aaaa", "a", [1, 2, 3], {"k": "v" * 50}, None]:
        used = store.set(PLUGIN, "k", value, quota_bytes=BIG)
        assert used == store.usage(PLUGIN) == base + size("k", value)


def test_overwrite_within_quota_does_not_double_count(store: PluginStorage) -> None:
    quota = size("k", "abcd")
    store.set(PLUGIN, "k", "abcd", quota_bytes=quota)

    # The old entry's bytes are released by the same write, so a same-size value fits.
    assert store.set(PLUGIN, "k", "wxyz", quota_bytes=quota) == quota


def test_shrinking_overwrite_succeeds_when_already_over_quota(store: PluginStorage) -> None:
    store.set(PLUGIN, "k", "x" * 100, quota_bytes=BIG)
    store.set(PLUGIN, "j", "y" * 50, quota_bytes=BIG)
    lowered = 10  # the operator lowered the quota below what the plugin already holds

    used = store.set(PLUGIN, "k", "x" * 10, quota_bytes=lowered)
    assert used == store.usage(PLUGIN) == size("k", "x" * 10) + size("j", "y" * 50)
    assert store.get(PLUGIN, "k") == "x" * 10
    # Same size does not grow usage either.
    assert store.set(PLUGIN, "k", "z" * 10, quota_bytes=lowered) == used

    before = snapshot(store)
    with pytest.raises(ResourceLimitExceededError, match="needs 1 more"):
        store.set(PLUGIN, "k", "x" * 11, quota_bytes=lowered)
    with pytest.raises(ResourceLimitExceededError, match="quota of 10 bytes"):
        store.set(PLUGIN, "new", 0, quota_bytes=lowered)
    assert snapshot(store) == before


def test_zero_quota_refuses_every_write(store: PluginStorage) -> None:
    with pytest.raises(ResourceLimitExceededError, match="quota of 0 bytes; the plugin uses 0"):
        store.set(PLUGIN, "k", None, quota_bytes=0)
    assert snapshot(store) == ([], {}, 0)

    store.set(PLUGIN, "k", "some data", quota_bytes=BIG)
    before = snapshot(store)
    used = before[2]
    with pytest.raises(ResourceLimitExceededError) as info:
        store.set(PLUGIN, "k", "", quota_bytes=0)  # even a shrink: storage is switched off
    assert f"switched off (a quota of 0 bytes); the plugin uses {used} and may only" in str(
        info.value
    )
    assert snapshot(store) == before


@pytest.mark.parametrize("quota", [-1, True, 1.5, "100", None])
def test_bad_quota_is_refused(store: PluginStorage, quota: Any) -> None:
    with pytest.raises(InvalidInputError, match="quota_bytes must be an integer >= 0"):
        store.set(PLUGIN, "k", 1, quota_bytes=quota)

    assert snapshot(store) == ([], {}, 0)


# --- delete and clear ----------------------------------------------------------------------


def test_delete_releases_the_entry_bytes(store: PluginStorage) -> None:
    store.set(PLUGIN, "a", "one", quota_bytes=BIG)
    store.set(PLUGIN, "bé", {"two": 2}, quota_bytes=BIG)

    assert store.delete(PLUGIN, "bé") is True
    assert store.usage(PLUGIN) == size("a", "one")
    assert store.get(PLUGIN, "bé") is None

    before = snapshot(store)
    assert store.delete(PLUGIN, "bé") is False
    assert snapshot(store) == before

    assert store.delete(PLUGIN, "a") is True
    assert snapshot(store) == ([], {}, 0)


def test_clear_removes_everything_and_resets_usage(store: PluginStorage) -> None:
    for i in range(5):
        store.set(PLUGIN, f"k{i}", i, quota_bytes=BIG)
    quota = size("k0", 0)

    assert store.clear(PLUGIN) == 5
    assert snapshot(store) == ([], {}, 0)
    assert store.clear(PLUGIN) == 0
    # Usage starts again from zero: the old entries no longer count against the quota.
    assert store.set(PLUGIN, "k0", 0, quota_bytes=quota) == quota


# --- key, prefix and limit rules -----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "key must be 1 to 256 characters long, got 0"),
        ("x" * 257, "key must be 1 to 256 characters long, got 257"),
        ("a\x00b", "key must not contain control characters (found U+0000 at index 1)"),
        ("line\n", "key must not contain control characters (found U+000A at index 4)"),
        ("\x1f", "control characters (found U+001F"),
        ("del\x7f", "control characters (found U+007F"),
        ("c1\x85", "control characters (found U+0085"),
        ("c1\x9f", "control characters (found U+009F"),
        ("half\ud800", "key must be valid Unicode text (found lone surrogate U+D800"),
        (1, "key must be a string, got int"),
        (None, "key must be a string, got NoneType"),
        (b"k", "key must be a string, got bytes"),
    ],
)
def test_bad_keys_are_refused_everywhere(store: PluginStorage, key: Any, fragment: str) -> None:
    store.set(PLUGIN, "kept", "v", quota_bytes=BIG)
    before = snapshot(store)

    for call in (
        lambda: store.set(PLUGIN, key, "v", quota_bytes=BIG),
        lambda: store.get(PLUGIN, key),
        lambda: store.delete(PLUGIN, key),
    ):
        with pytest.raises(InvalidInputError) as info:
            call()
        assert fragment in str(info.value)
    assert snapshot(store) == before


def test_key_length_limit_is_configurable(db: RuntimeDatabase) -> None:
    store = PluginStorage(db, max_key_chars=3)
    store.set(PLUGIN, "abc", 1, quota_bytes=BIG)

    with pytest.raises(InvalidInputError, match="key must be 1 to 3 characters long, got 4"):
        store.set(PLUGIN, "abcd", 1, quota_bytes=BIG)
    assert snapshot(store) == (["abc"], {"abc": 1}, size("abc", 1))


def test_prefix_is_matched_literally_and_case_sensitively(store: PluginStorage) -> None:
    keys = ["abc", "a_c", "a_", "a%c", "aXc", "A_x", "ab", "b"]
    for key in keys:
        store.set(PLUGIN, key, 0, quota_bytes=BIG)

    assert store.keys(PLUGIN) == sorted(keys)
    assert store.keys(PLUGIN, "a_") == ["a_", "a_c"]  # "_" is not a wildcard
    assert store.keys(PLUGIN, "a%") == ["a%c"]  # nor is "%"
    assert store.keys(PLUGIN, "A") == ["A_x"]  # LIKE would have matched "a…" too
    assert store.keys(PLUGIN, "ab") == ["ab", "abc"]
    assert store.keys(PLUGIN, "abc") == ["abc"]
    assert store.keys(PLUGIN, "abcd") == []
    assert store.keys(PLUGIN, "c") == []


def test_prefix_range_is_exact_at_unicode_edges(store: PluginStorage) -> None:
    keys = ["\ud7ffx", "\ue000", "\U0010ffff", "\U0010ffffz", "a\U0010ffff", "b", "é", "😀"]
    for key in keys:
        store.set(PLUGIN, key, 0, quota_bytes=BIG)

    assert store.keys(PLUGIN) == sorted(keys)  # code-point order, as Python sorts
    assert store.keys(PLUGIN, "\ud7ff") == ["\ud7ffx"]  # next code point skips the surrogates
    assert store.keys(PLUGIN, "\U0010ffff") == ["\U0010ffff", "\U0010ffffz"]
    assert store.keys(PLUGIN, "a\U0010ffff") == ["a\U0010ffff"]  # carries into "b"
    assert store.keys(PLUGIN, "a") == ["a\U0010ffff"]


def test_keys_limit_returns_the_first_keys_in_order(store: PluginStorage) -> None:
    for i in range(12):
        store.set(PLUGIN, f"k{i:02}", i, quota_bytes=BIG)

    assert store.keys(PLUGIN, limit=3) == ["k00", "k01", "k02"]
    assert store.keys(PLUGIN, "k1", limit=1) == ["k10"]
    assert len(store.keys(PLUGIN, limit=MAX_KEYS_LIMIT)) == 12


@pytest.mark.parametrize(
    ("prefix", "limit", "fragment"),
    [
        ("a\x00", 10, "prefix must not contain control characters"),
        ("\x9b", 10, "prefix must not contain control characters"),
        (5, 10, "prefix must be a string, got int"),
        ("x" * 257, 10, "prefix must be 0 to 256 characters long, got 257"),
        ("", 0, "limit must be an integer from 1 to 10000, got 0"),
        ("", 10_001, "limit must be an integer from 1 to 10000, got 10001"),
        ("", -1, "limit must be an integer from 1 to 10000"),
        ("", True, "limit must be an integer from 1 to 10000, got True"),
        ("", 2.0, "limit must be an integer from 1 to 10000, got 2.0"),
    ],
)
def test_bad_prefix_or_limit_is_refused(
    store: PluginStorage, prefix: Any, limit: Any, fragment: str
) -> None:
    store.set(PLUGIN, "kept", "v", quota_bytes=BIG)
    before = snapshot(store)

    with pytest.raises(InvalidInputError) as info:
        store.keys(PLUGIN, prefix, limit=limit)

    assert fragment in str(info.value)
    assert snapshot(store) == before


# --- value rules ---------------------------------------------------------------------------


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (float("nan"), "Out of range float values are not JSON compliant"),
        (float("inf"), "Out of range float values are not JSON compliant"),
        ([1, float("-inf")], "Out of range float values are not JSON compliant"),
        ({1, 2}, "Object of type set is not JSON serializable"),
        (b"raw", "Object of type bytes is not JSON serializable"),
        ({"k": object()}, "Object of type object is not JSON serializable"),
        ({1: "a"}, "object keys must be strings, got int 1"),
        ([{"ok": {None: 0}}], "object keys must be strings, got NoneType None"),
        (_circular(), "Circular reference detected"),
        (_deep(100_000), "nested too deeply"),
        ("half \ud800", "a string holds a lone surrogate"),
    ],
    ids=[
        "nan",
        "inf",
        "nested-inf",
        "set",
        "bytes",
        "object",
        "int-key",
        "nested-none-key",
        "circular",
        "deep",
        "surrogate",
    ],
)
def test_values_that_are_not_json_are_refused(
    store: PluginStorage, value: Any, fragment: str
) -> None:
    store.set(PLUGIN, "k", "old", quota_bytes=BIG)
    before = snapshot(store)

    with pytest.raises(InvalidInputError) as info:
        store.set(PLUGIN, "k", value, quota_bytes=BIG)

    assert str(info.value).startswith("value is not JSON (")
    assert fragment in str(info.value)
    assert snapshot(store) == before


def test_value_over_the_size_limit_is_refused(db: RuntimeDatabase) -> None:
    store = PluginStorage(db, max_value_bytes=10)
    assert store.set(PLUGIN, "k", "x" * 8, quota_bytes=BIG) == 1 + 10  # exactly the limit
    before = snapshot(store)

    with pytest.raises(ResourceLimitExceededError) as info:
        store.set(PLUGIN, "k", "x" * 9, quota_bytes=BIG)

    assert info.value.plugin == PLUGIN
    assert info.value.limit == "storage"
    assert "the value for key 'k' is 11 bytes; one value may be at most 10 bytes" in str(info.value)
    assert snapshot(store) == before


def test_default_value_limit_is_one_mebibyte(store: PluginStorage) -> None:
    with pytest.raises(ResourceLimitExceededError, match=r"is 1048578 bytes; .* 1048576 bytes"):
        store.set(PLUGIN, "huge", "x" * (1024 * 1024), quota_bytes=10 * 1024 * 1024)

    assert snapshot(store) == ([], {}, 0)


# --- persistence ---------------------------------------------------------------------------


def test_entries_and_usage_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rt.sqlite"
    db = RuntimeDatabase(path)
    store = PluginStorage(db)
    store.set(PLUGIN, "k", {"n": [1, 2]}, quota_bytes=BIG)
    store.set(PLUGIN, "ключ", "v", quota_bytes=BIG)
    store.set("other.plugin", "k", 0, quota_bytes=BIG)
    before = snapshot(store)
    db.close()

    reopened = RuntimeDatabase(path)
    try:
        again = PluginStorage(reopened)  # creating the tables again must not disturb them
        assert snapshot(again) == before
        assert again.usage("other.plugin") == size("k", 0)
        assert again.set(PLUGIN, "k", None, quota_bytes=BIG) == size("k", None) + size("ключ", "v")
    finally:
        reopened.close()
