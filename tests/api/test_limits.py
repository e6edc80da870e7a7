"""Limits of ``POST /api/v1/sendmessage``: body size (whatever Content-Length says), counts of
unit results and lint messages, and JSON Harbor refuses to store. Each refusal asserts the
status, the error body and that no row was written."""

import io
import json

import pytest
from django.db import connection
from django.test import override_settings

from builds.models import BuildMessage, UnitResult
from messages_api.json_limits import unstorable
from tests.api.conftest import assert_nothing_stored
from tests.api.test_sendmessage import UNIT, assert_error, message

URL = "/api/v1/sendmessage"
LIMIT = 2000  # a small body cap for these tests, so they stay fast


class CountingStream(io.BytesIO):
    """A request body that remembers how many bytes the server read from it."""

    bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def big_payload(target, size: int) -> bytes:
    """A valid message of at least ``size`` bytes."""
    filler = "x" * size
    return json.dumps(message(target, unit=[{**UNIT, "details": filler}])).encode()


def post_chunked(client, body: bytes) -> tuple:
    """Post ``body`` as a server passes a chunked request on: no Content-Length, the
    dechunked bytes in ``wsgi.input``, and ``wsgi.input_terminated`` set (gunicorn)."""
    stream = CountingStream(body)
    response = client.generic(
        "POST",
        URL,
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": stream, "wsgi.input_terminated": True},
    )
    return response, stream


@override_settings(HARBOR_API_MAX_BODY_BYTES=LIMIT)
def test_a_declared_length_over_the_cap_gets_413_before_the_body_is_read(client, waiting_target):
    body = big_payload(waiting_target, LIMIT)
    stream = CountingStream(body)
    with assert_nothing_stored():
        response = client.generic(
            "POST",
            URL,
            content_type="application/json",
            CONTENT_LENGTH=str(len(body)),
            **{"wsgi.input": stream},
        )
    assert_error(response, 413, "too_large", f"{LIMIT} bytes")
    assert stream.bytes_read == 0


@override_settings(HARBOR_API_MAX_BODY_BYTES=LIMIT)
def test_a_chunked_body_over_the_cap_gets_413_having_read_little_more_than_the_cap(
    client, waiting_target
):
    body = big_payload(waiting_target, 50 * LIMIT)
    with assert_nothing_stored():
        response, stream = post_chunked(client, body)
    assert_error(response, 413, "too_large", f"{LIMIT} bytes")
    assert stream.bytes_read == LIMIT + 1


def test_a_chunked_body_under_the_cap_is_parsed_and_stored(client, waiting_target):
    """Django alone ignores a body without Content-Length; Harbor reads it."""
    response, _ = post_chunked(client, json.dumps(message(waiting_target)).encode())
    assert response.status_code == 202, response.content
    assert BuildMessage.objects.get().receiver_phid == waiting_target.phid


def test_the_default_cap_is_16_mib_counted_on_the_bytes_read(client, waiting_target):
    body = big_payload(waiting_target, 16 * 1024 * 1024)
    with assert_nothing_stored():
        response, stream = post_chunked(client, body)
    assert_error(response, 413, "too_large", f"{16 * 1024 * 1024} bytes")
    assert stream.bytes_read == 16 * 1024 * 1024 + 1


@override_settings(HARBOR_API_MAX_BODY_BYTES=LIMIT)
def test_a_false_small_content_length_never_lets_more_than_it_declares_be_read(
    client, waiting_target
):
    """The body is the declared bytes (the server treats the rest as the next request), so
    an over-cap body behind a small Content-Length is read only up to that length: here a
    truncated JSON, refused as such."""
    body = big_payload(waiting_target, 50 * LIMIT)
    stream = CountingStream(body)
    with assert_nothing_stored():
        response = client.generic(
            "POST",
            URL,
            content_type="application/json",
            CONTENT_LENGTH="100",
            **{"wsgi.input": stream},
        )
    assert_error(response, 400, "invalid_json", "not valid JSON")
    assert stream.bytes_read == 100


@override_settings(HARBOR_API_MAX_UNIT_RESULTS=3, HARBOR_API_MAX_LINT_MESSAGES=2)
@pytest.mark.parametrize(
    ("field", "count", "words"),
    [("unit", 4, "At most 3 unit results"), ("lint", 3, "At most 2 lint messages")],
)
def test_more_results_than_the_limit_get_400(client, waiting_target, field, count, words):
    item = message(waiting_target)[field][0]
    with assert_nothing_stored():
        response = client.post(
            URL, message(waiting_target, **{field: [item] * count}), format="json"
        )
    body = assert_error(response, 400, "validation_error", field)
    assert words in body["fields"][field][0]


@override_settings(HARBOR_API_MAX_UNIT_RESULTS=3)
def test_exactly_the_limit_is_accepted(client, waiting_target):
    response = client.post(URL, message(waiting_target, unit=[dict(UNIT)] * 3), format="json")
    assert response.status_code == 202, response.content
    assert UnitResult.objects.count() == 3


def test_the_default_count_limits_are_50000(settings):
    assert settings.HARBOR_API_MAX_UNIT_RESULTS == 50_000
    assert settings.HARBOR_API_MAX_LINT_MESSAGES == 50_000


def raw(target, unit_name_json: str) -> str:
    """A message whose first unit result's name is the raw JSON text ``unit_name_json``."""
    return (
        f'{{"receiver": "{target.phid}", "type": "pass", '
        f'"unit": [{{"name": {unit_name_json}, "result": "pass"}}]}}'
    )


BAD_JSON = {
    "NUL in a string": (lambda t: raw(t, r'"a\u0000b"'), "unit[0].name", "NUL"),
    "NUL in a key": (
        lambda t: raw(t, '"ok"').replace('"result"', r'"res\u0000ult"'),
        "a key",
        "NUL",
    ),
    "lone high surrogate": (lambda t: raw(t, r'"a\ud800b"'), "unit[0].name", "surrogate"),
    "lone low surrogate": (lambda t: raw(t, r'"\udc00"'), "unit[0].name", "surrogate"),
    "reversed surrogate pair": (lambda t: raw(t, r'"\ude00\ud83d"'), "unit[0].name", "surrogate"),
    "NaN": (lambda t: raw(t, '"x", "duration": NaN'), "NaN", "finite"),
    "Infinity": (lambda t: raw(t, '"x", "duration": Infinity'), "Infinity", "finite"),
    "-Infinity": (lambda t: raw(t, '"x", "duration": -Infinity'), "-Infinity", "finite"),
    "nested 33 deep": (
        lambda t: raw(t, '"x", "coverage": ' + "[" * 30 + "]" * 30),
        "nested more than 32",
        "",
    ),
    "nested 100000 deep": (lambda t: "[" * 100_000 + "]" * 100_000, "nested more than 32", ""),
}


@pytest.mark.parametrize("case", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_json_harbor_cannot_store_gets_400_invalid_json(client, waiting_target, case):
    build_body, named, words = case
    with assert_nothing_stored():
        response = client.post(URL, build_body(waiting_target), content_type="application/json")
    body = assert_error(response, 400, "invalid_json", named)
    assert words in body["detail"]


UNPAIRED = "contains an unpaired surrogate (\\ud800-\\udfff), which is not a Unicode character"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a\x00b", "contains a NUL character (\\u0000)"),
        ("a\ud800b", UNPAIRED),
        ("\udfff", UNPAIRED),
        ("\U0001f600", ""),
        ("", ""),
    ],
    ids=["NUL", "high surrogate", "low surrogate", "paired", "empty"],
)
def test_a_string_with_nul_or_an_unpaired_surrogate_is_unstorable_saying_why(text, reason):
    assert unstorable(text) == reason


HUGE_INTEGER = "1" * 5000  # Python's json refuses more than 4,300 digits with a ValueError


@pytest.mark.parametrize(
    "url", [URL, "/api/v1/builds", "/api/v1/builds/{build}/commands"], ids=lambda u: u[8:]
)
@pytest.mark.parametrize(
    "body",
    [HUGE_INTEGER, f'{{"command": {HUGE_INTEGER}}}', f'{{"plan": "x", "a": [-{HUGE_INTEGER}]}}'],
    ids=["top level", "a field", "in a list"],
)
def test_an_integer_of_5000_digits_gets_400_invalid_json(client, waiting_target, url, body):
    url = url.format(build=waiting_target.build_id)
    with assert_nothing_stored():
        response = client.post(url, body, content_type="application/json")
    assert_error(response, 400, "invalid_json", "more than 4300 digits")


def test_a_valid_surrogate_pair_escape_is_one_character(client, waiting_target):
    response = client.post(
        URL, raw(waiting_target, r'"\ud83d\ude00"'), content_type="application/json"
    )
    assert response.status_code == 202, response.content
    assert UnitResult.objects.get().name == "\U0001f600"


def test_32_levels_of_nesting_are_accepted(client, waiting_target):
    # The body's object, "unit", an item and "coverage" are 4 levels; 28 more make 32.
    body = raw(waiting_target, '"x", "coverage": {"a": ' + "[" * 28 + "]" * 28 + "}")
    response = client.post(URL, body, content_type="application/json")
    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    "encoded",
    [
        "café".encode("latin-1"),
        b"\xff\xfe",
        "é".encode("utf-16"),
        b"\xed\xa0\x80",  # a surrogate encoded as if UTF-8 (CESU-8)
    ],
    ids=["latin-1", "invalid byte", "utf-16", "encoded surrogate"],
)
def test_a_body_that_is_not_utf8_gets_400(client, waiting_target, encoded):
    body = raw(waiting_target, '"NAME"').encode().replace(b"NAME", encoded)
    with assert_nothing_stored():
        response = client.post(URL, body, content_type="application/json")
    assert_error(response, 400, "invalid_json", "not UTF-8")


def test_a_form_encoded_body_gets_415(client, waiting_target):
    with assert_nothing_stored():
        response = client.post(
            URL,
            f"receiver={waiting_target.phid}&type=pass",
            content_type="application/x-www-form-urlencoded",
        )
    assert_error(response, 415, "unsupported_media_type", "application/x-www-form-urlencoded")


LONG_NAMES = [
    "ü" * 300,
    "测试" * 200 + "\U0001f680" * 100,
    "\u202eright-to-left " + "ا" * 300,
    "e\u0301" * 250,  # combining accents, not normalised
    " leading and trailing spaces " + "x" * 400 + "  ",
]


@pytest.mark.parametrize("ensure_ascii", [True, False], ids=["escaped", "raw UTF-8"])
def test_long_unicode_test_names_round_trip_exactly(client, waiting_target, ensure_ascii):
    units = [{"name": name, "result": "pass", "namespace": name[:50]} for name in LONG_NAMES]
    body = json.dumps(message(waiting_target, unit=units, lint=[]), ensure_ascii=ensure_ascii)
    response = client.post(URL, body.encode(), content_type="application/json")
    assert response.status_code == 202, response.content
    shown = client.get(f"/api/v1/targets/{waiting_target.pk}").json()["unit"]
    assert [unit["name"] for unit in shown] == LONG_NAMES
    assert [unit["namespace"] for unit in shown] == [name[:50] for name in LONG_NAMES]
    stored = list(UnitResult.objects.order_by("id").values_list("name", flat=True))
    assert stored == LONG_NAMES


def test_3000_unit_results_are_stored_with_their_message(client, waiting_target):
    units = [{"name": f"test_{i}", "result": "pass", "duration": i / 1000} for i in range(3000)]
    response = client.post(URL, message(waiting_target, unit=units, lint=[]), format="json")
    assert response.status_code == 202, response.content
    stored = UnitResult.objects.filter(message_id=response.json()["id"], target=waiting_target)
    assert stored.count() == 3000
    assert set(stored.values_list("name", flat=True)) == {u["name"] for u in units}


@pytest.fixture
def failing_last_unit(transactional_db):
    """Make PostgreSQL refuse the unit result named ``test_2999``: the last row of the bulk
    insert, after the message and 2,999 results were written."""
    table = UnitResult._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION api_test_fail_last() RETURNS trigger AS $$ BEGIN "
            "IF NEW.name = 'test_2999' THEN RAISE EXCEPTION 'injected failure'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER api_test_fail_last BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION api_test_fail_last()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER api_test_fail_last ON {table}")
        cursor.execute("DROP FUNCTION api_test_fail_last()")


def test_3000_unit_results_are_stored_in_one_transaction(client, waiting_target, failing_last_unit):
    """If the 3,000th row fails, neither the message nor the 2,999 before it remain."""
    units = [{"name": f"test_{i}", "result": "pass"} for i in range(3000)]
    client.raise_request_exception = False
    with assert_nothing_stored():
        response = client.post(URL, message(waiting_target, unit=units, lint=[]), format="json")
    assert response.status_code == 500
