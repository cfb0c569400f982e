"""The pure decisions of task processing: schema checks that name the field, idempotency keys,
the retry schedule and JSON pointers. No host, no queue."""

from __future__ import annotations

import datetime
import itertools

import pytest

from plugport._task_rules import (
    MAX_PAYLOAD_BYTES,
    check_document,
    idempotency_key_for,
    next_attempt,
    resolve_pointer,
    retry_delay_s,
)
from plugport.errors import InvalidInputError, TaskValidationError
from plugport.host.tasks.cron import cron_matches, parse_cron
from plugport.manifest import TaskSpec

SCHEMA = {
    "type": "object",
    "required": ["pr"],
    "additionalProperties": False,
    "properties": {
        "pr": {
            "type": "object",
            "required": ["number"],
            "properties": {"number": {"type": "integer", "minimum": 1}},
        },
        "labels": {"type": "array", "items": {"type": "string"}},
    },
}


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({}, "/pr", "is required and missing"),
        ({"pr": {}}, "/pr/number", "is required and missing"),
        ({"pr": {"number": "7"}}, "/pr/number", "is not of type 'integer'"),
        ({"pr": {"number": 0}}, "/pr/number", "less than the minimum"),
        ({"pr": {"number": 1}, "labels": ["a", 2]}, "/labels/1", "is not of type 'string'"),
        ({"pr": {"number": 1}, "extra": True}, "/extra", "is not an allowed field"),
        ([], "", "is not of type 'object'"),
    ],
)
def test_a_payload_that_breaks_its_schema_names_the_field(
    payload: object, field: str, reason: str
) -> None:
    with pytest.raises(TaskValidationError) as caught:
        check_document("GITHUB_PR_REVIEW", "payload", SCHEMA, payload)
    error = caught.value
    assert (error.task_type, error.part, error.field) == ("GITHUB_PR_REVIEW", "payload", field)
    assert reason in str(error)
    assert str(error).startswith("task GITHUB_PR_REVIEW: payload ")


def test_a_matching_payload_and_an_empty_schema_pass() -> None:
    check_document("T", "payload", SCHEMA, {"pr": {"number": 3}, "labels": ["x"]})
    check_document("T", "result", {}, {"anything": [1, 2, None]})


def test_documents_must_be_json_and_within_the_size_limit() -> None:
    with pytest.raises(TaskValidationError, match="not JSON"):
        check_document("T", "result", {}, {"when": datetime.date(2026, 1, 1)})
    with pytest.raises(TaskValidationError, match="not JSON"):
        check_document("T", "payload", {}, float("nan"))
    with pytest.raises(TaskValidationError, match=f"at most {MAX_PAYLOAD_BYTES}"):
        check_document("T", "payload", {}, "x" * MAX_PAYLOAD_BYTES)


def test_the_idempotency_key_comes_from_the_submitter_or_the_payload() -> None:
    spec = TaskSpec.model_validate({"idempotency-key": "/pr/number"})
    assert idempotency_key_for("T", spec, {"pr": {"number": 7}}, None) == "7"
    assert idempotency_key_for("T", spec, {"pr": {"number": 7}}, "mine") == "mine"
    assert idempotency_key_for("T", TaskSpec(), {"pr": 1}, None) is None
    with pytest.raises(TaskValidationError) as caught:
        idempotency_key_for("T", spec, {"pr": {}}, None)
    assert caught.value.field == "/pr/number"
    with pytest.raises(TaskValidationError, match="string, number or boolean"):
        idempotency_key_for("T", spec, {"pr": {"number": [1]}}, None)
    with pytest.raises(InvalidInputError, match="1-200 characters"):
        idempotency_key_for("T", spec, {}, "")


def test_retries_back_off_exponentially_with_jitter_and_a_cap() -> None:
    for attempt, r in itertools.product(range(1, 12), (0.0, 0.5, 1.0)):
        delay = retry_delay_s(attempt, base_s=1.0, cap_s=60.0, random=lambda r=r: r)
        ceiling = min(60.0, 2.0 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert next_attempt(1, 100.0, max_attempts=3, base_s=2, cap_s=10, random=lambda: 0) == (
        "retry",
        101.0,
    )
    assert next_attempt(3, 100.0, max_attempts=3, base_s=2, cap_s=10, random=lambda: 0) == (
        "dead",
        100.0,
    )
    assert next_attempt(
        1, 100.0, max_attempts=9, base_s=2, cap_s=10, random=lambda: 0, retryable=False
    ) == ("dead", 100.0)


def test_json_pointers_follow_rfc_6901() -> None:
    doc = {"a/b": {"~x": [10, 20]}, "": 1}
    assert resolve_pointer(doc, "") == doc
    assert resolve_pointer(doc, "/a~1b/~0x/1") == 20
    assert resolve_pointer(doc, "/") == 1
    with pytest.raises(KeyError, match="nothing at '/a~1b/~0x/2'"):
        resolve_pointer(doc, "/a~1b/~0x/2")
    with pytest.raises(KeyError, match="not a JSON pointer"):
        resolve_pointer(doc, "a")


def test_the_manifest_refuses_a_backoff_cap_below_its_base() -> None:
    with pytest.raises(ValueError, match="max-backoff-seconds must be at least"):
        TaskSpec.model_validate({"backoff-seconds": 10, "max-backoff-seconds": 5})


def test_cron_expressions_match_minutes_and_bad_ones_name_the_field() -> None:
    monday_9 = datetime.datetime(2026, 12, 7, 9, 0)
    assert cron_matches("0 9 * * 1-5", monday_9)
    assert not cron_matches("0 9 * * 0,6", monday_9)
    assert cron_matches("*/15 * * * *", monday_9.replace(minute=45))
    assert not cron_matches("*/15 * * * *", monday_9.replace(minute=44))
    with pytest.raises(InvalidInputError, match="five fields"):
        parse_cron("0 9 * *")
    with pytest.raises(InvalidInputError, match="the hour field '25'"):
        parse_cron("0 25 * * *")
