"""Every write endpoint against every class of bad input: each case must be refused with a
4xx in the JSON error shape (Conduit: an error envelope, HTTP 200) and store nothing.

The cases are generated, not random: for each field of a valid request, a value of every
JSON type the field does not take, and each hostile value (an integer of 5,000 digits,
``1e999``, nesting 40 deep, a string with NUL or an unpaired surrogate); for each object, a
key with NUL or a surrogate; and for each endpoint, bodies that are empty, not an object,
not UTF-8, truncated or nested past Python's recursion limit. Each valid request is first
checked to be accepted, so a case is refused for what it changed.
"""

import json
from dataclasses import dataclass
from urllib.parse import quote_from_bytes, urlencode

import pytest

from tests.api.conftest import assert_nothing_stored, make_build, make_target
from tests.conftest import make_plan

SLOT = "__SLOT__"
KEY_SLOT = "__KEY__"
HUGE = "1" * 5000
# Raw JSON text of one value of each JSON type.
SAMPLES = {
    "string": '"x"',
    "integer": "3",
    "number": "0.5",
    "boolean": "true",
    "array": "[]",
    "object": "{}",
}
ACCEPTS = {"number": {"number", "integer"}, "any": set(SAMPLES)}
HOSTILE_VALUES = {
    "5000 digits": HUGE,
    "-5000 digits": "-" + HUGE,
    "1e999": "1e999",
    "-1e999": "-1e999",
    "nested 40 deep": "[" * 40 + "]" * 40,
    "NUL": r'"a\u0000b"',
    "lone surrogate": r'"a\ud800b"',
}
HOSTILE_KEYS = {"NUL key": r'"k\u0000"', "surrogate key": r'"k\udfff"'}
NOT_UTF8 = b'"caf\xe9"'  # Latin-1, as a raw byte in the body (Conduit: percent-encoded)


@dataclass(frozen=True)
class Field:
    path: tuple  # keys and list indexes from the top of the body (or of Conduit's params)
    type: str  # "string", "integer", "number", "boolean", "array", "object" or "any"
    nullable: bool = False  # whether null is accepted (absent, or allowed)


def unit(duration: float) -> dict:
    return {
        "name": "test_a",
        "result": "pass",
        "namespace": "ns",
        "engine": "pytest",
        "duration": duration,
        "path": "a.py",
        "details": "ok",
        "format": "text",
        "coverage": {"a.py": "NUC"},
    }


LINT = {
    "name": "Long line",
    "code": "E501",
    "severity": "warning",
    "path": "a.py",
    "line": 3,
    "char": 81,
    "description": "too long",
}


def message_fields(nullable_lists: bool) -> list[Field]:
    """The fields of a message with one unit result and one lint message."""
    fields = [
        Field(("receiver",), "string"),
        Field(("type",), "string"),
        Field(("unit",), "array", nullable_lists),
        Field(("unit", 0), "object"),
        Field(("lint",), "array", nullable_lists),
        Field(("lint", 0), "object"),
        Field(("unit", 0, "duration"), "number"),
        Field(("unit", 0, "coverage"), "object"),
        Field(("unit", 0, "coverage", "a.py"), "any", nullable=True),  # stored as it came
        Field(("lint", 0, "line"), "integer"),
        Field(("lint", 0, "char"), "integer"),
    ]
    strings = [k for k, v in unit(0.5).items() if isinstance(v, str)]
    fields += [Field(("unit", 0, key), "string") for key in strings]
    fields += [Field(("lint", 0, k), "string") for k, v in LINT.items() if isinstance(v, str)]
    return fields


@dataclass(frozen=True)
class Endpoint:
    name: str
    fields: list[Field]
    conduit: bool = False  # a Conduit method (params JSON), else a REST URL


ENDPOINTS = {
    "sendmessage": Endpoint(
        "/api/v1/sendmessage",
        [*message_fields(nullable_lists=True), Field(("idempotency_key",), "string", True)],
    ),
    "builds": Endpoint(
        "/api/v1/builds",
        [
            Field(("plan",), "string"),
            Field(("buildable",), "object"),
            Field(("parameters",), "object"),
            Field(("parameters", "env"), "string"),
            *[Field(("buildable", k), "string") for k in ("repository", "ref", "commit")],
        ],
    ),
    "commands": Endpoint("/api/v1/builds/{build}/commands", [Field(("command",), "string")]),
    "conduit sendmessage": Endpoint(
        "harbormaster.sendmessage", message_fields(nullable_lists=True), conduit=True
    ),
    "conduit createartifact": Endpoint(
        "harbormaster.createartifact",
        [
            Field(("buildTargetPHID",), "string"),
            Field(("artifactKey",), "string"),
            Field(("artifactType",), "string"),
            Field(("artifactData",), "object"),
            Field(("artifactData", "uri"), "string"),
            Field(("artifactData", "name"), "string"),
            Field(("artifactData", "ui.external"), "boolean"),
        ],
        conduit=True,
    ),
}


def valid_body(name: str, target) -> dict:
    """A request ``name`` accepts, for ``target`` (and its build and plan)."""
    return {
        "sendmessage": {
            "receiver": target.phid,
            "type": "pass",
            "unit": [unit(0.5)],
            "lint": [dict(LINT)],
            "idempotency_key": "k1",
        },
        "builds": {
            "plan": "fuzz",
            "buildable": {"repository": "https://x/app.git", "ref": "main", "commit": "c" * 40},
            "parameters": {"env": "x"},
        },
        "commands": {"command": "pause"},
        "conduit sendmessage": {
            "receiver": target.phid,
            "type": "pass",
            "unit": [unit(0.5)],
            "lint": [dict(LINT)],
        },
        "conduit createartifact": {
            "buildTargetPHID": target.phid,
            "artifactKey": "ci.uri",
            "artifactType": "uri",
            "artifactData": {"uri": "https://ci/1", "name": "CI", "ui.external": True},
        },
    }[name]


def with_slot(body: dict, path: tuple, raw: bytes) -> bytes:
    """``body`` as JSON with the value at ``path`` replaced by the raw JSON ``raw``."""
    node = body = json.loads(json.dumps(body))
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = SLOT
    return json.dumps(body).encode().replace(f'"{SLOT}"'.encode(), raw)


def with_key(body: dict, path: tuple, raw_key: str) -> bytes:
    """``body`` as JSON text with a key ``raw_key`` (raw JSON) added to the object at
    ``path`` (``()``: the body itself)."""
    body = json.loads(json.dumps(body))
    node = body
    for step in path:
        node = node[step]
    node[KEY_SLOT] = "x"
    return json.dumps(body).replace(f'"{KEY_SLOT}"', raw_key).encode()


def field_cases(name: str) -> list:
    """``(endpoint name, case id, body-making function)`` for every field of ``name``."""
    cases = []
    for field in ENDPOINTS[name].fields:
        where = ".".join(str(step) for step in field.path)
        accepted = ACCEPTS.get(field.type, {field.type})
        wrong = {t: raw for t, raw in SAMPLES.items() if t not in accepted}
        if not field.nullable:
            wrong["null"] = "null"
        for kind, raw in {**wrong, **HOSTILE_VALUES}.items():
            cases.append((name, f"{where}={kind}", _slot_maker(field.path, raw.encode())))
        if field.type == "string":
            cases.append((name, f"{where}=not UTF-8", _slot_maker(field.path, NOT_UTF8)))
        if field.type == "object":
            for kind, raw_key in HOSTILE_KEYS.items():
                cases.append((name, f"{where}+{kind}", _key_maker(field.path, raw_key)))
    for kind, raw_key in HOSTILE_KEYS.items():
        cases.append((name, f"top+{kind}", _key_maker((), raw_key)))
    return cases


def _slot_maker(path, raw):
    return lambda body: with_slot(body, path, raw)


def _key_maker(path, raw_key):
    return lambda body: with_key(body, path, raw_key)


BODIES = {  # whole bodies, as bytes
    "empty": b"",
    "array": b"[]",
    "string": b'"x"',
    "number": b"1",
    "null": b"null",
    "true": b"true",
    "5000 digits": HUGE.encode(),
    "1e999": b"1e999",
    "NaN": b"NaN",
    "truncated": b'{"a": ',
    "not UTF-8": b'{"a": "caf\xe9"}',
    "UTF-16": '{"a": 1}'.encode("utf-16"),
    "UTF-8 BOM": b'\xef\xbb\xbf{"a": 1}',
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "NUL byte": b'{"a": "\x00"}',
}


def body_cases(name: str) -> list:
    return [(name, f"body {kind}", _constant(raw)) for kind, raw in BODIES.items()]


def _constant(raw: bytes):
    return lambda body: raw


CASES = [case for name in ENDPOINTS for case in field_cases(name) + body_cases(name)]
CASE_IDS = [f"{name}: {case}" for name, case, _ in CASES]


@pytest.fixture
def target(buildable, user):
    plan = make_plan("fuzz", [{"key": "ci", "step_type": "http", "wait_for_message": True}])
    return make_target(make_build(plan, buildable, initiator=user))


def send(client, api_token, name: str, target, body: bytes):
    """Post ``body`` to endpoint ``name``; return the response. For Conduit, ``body`` is
    the ``params`` field, percent-encoded byte for byte, with the token added."""
    endpoint = ENDPOINTS[name]
    if not endpoint.conduit:
        url = endpoint.name.format(build=target.build_id)
        return client.post(url, body, content_type="application/json")
    form = b"params=" + quote_from_bytes(_with_token(body, api_token), safe="").encode()
    return client.post(
        f"/api/{endpoint.name}", form, content_type="application/x-www-form-urlencoded"
    )


def _with_token(params: bytes, api_token: str) -> bytes:
    """Add ``__conduit__`` to a JSON object's text; anything else is sent as it is (the
    call is then refused before authentication, as it should be)."""
    if not params.startswith(b"{") or params == b"{}":
        return params
    return b'{"__conduit__": {"token": "%s"}, %s' % (api_token.encode(), params[1:])


@pytest.mark.parametrize("name", ENDPOINTS)
def test_each_valid_request_the_cases_start_from_is_accepted(client, api_token, target, name):
    response = send(client, api_token, name, target, json.dumps(valid_body(name, target)).encode())
    assert response.status_code in (200, 201, 202), response.content
    if ENDPOINTS[name].conduit:
        assert response.json()["error_code"] is None, response.json()


@pytest.mark.parametrize(("name", "case", "make"), CASES, ids=CASE_IDS)
def test_bad_input_is_refused_with_an_error_and_stores_nothing(
    client, api_token, target, name, case, make
):
    body = make(valid_body(name, target))
    with assert_nothing_stored():
        response = send(client, api_token, name, target, body)
    assert response["Content-Type"] == "application/json", response.content[:300]
    answer = response.json()
    if ENDPOINTS[name].conduit:
        assert response.status_code == 200
        assert answer["result"] is None and answer["error_code"], answer
        assert "Unexpected error" not in answer["error_info"], answer
    else:
        assert 400 <= response.status_code < 500, answer
        assert answer["error"] and answer["detail"], answer


JUNIT = b'<testsuite name="s"><testcase classname="c" name="t" time="0.5"/></testsuite>'
JUNIT_BODIES = {
    "empty": b"",
    "not XML": b"hello",
    "JSON": b'{"a": 1}',
    "not UTF-8": b'<testsuite><testcase classname="c" name="caf\xe9"/></testsuite>',
    "NUL byte": b'<testsuite><testcase classname="c" name="a\x00"/></testsuite>',
    "NUL reference": b'<testsuite><testcase classname="c" name="a&#0;"/></testsuite>',
    "surrogate reference": b'<testsuite><testcase classname="c" name="&#xD800;"/></testsuite>',
    "suites nested 100000 deep": b"<testsuite>" * 100_000 + b"</testsuite>" * 100_000,
    "nested 100000 deep": b"<a>" * 100_000 + b"</a>" * 100_000,
    "entity expansion": (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<testsuite><testcase classname="c" name="&c;"/></testsuite>'
    ),
    "external entity": (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<testsuite><testcase classname="c" name="&x;"/></testsuite>'
    ),
}
JUNIT_OPTIONS = {  # each changes the query of a valid report (None: leave the key out)
    "no receiver": {"receiver": None},
    "empty receiver": {"receiver": ""},
    "NUL in receiver": {"receiver": "PHID-HMBT-\x00"},
    "5000-digit receiver": {"receiver": HUGE},
    "huge monogram receiver": {"receiver": "B" + HUGE},
    "unknown type": {"type": "pass"},
    "NUL in type": {"type": "auto\x00"},
    "NUL in idempotency_key": {"idempotency_key": "k\x00"},
    "idempotency_key too long": {"idempotency_key": "k" * 201},
}


def post_junit(client, document: bytes, options: dict):
    return client.post(
        f"/api/v1/junit?{urlencode(options)}", document, content_type="application/xml"
    )


def test_the_junit_report_the_cases_start_from_is_accepted(client, target):
    response = post_junit(client, JUNIT, {"receiver": target.phid})
    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    ("document", "changes"),
    [(body, None) for body in JUNIT_BODIES.values()]
    + [(JUNIT, changes) for changes in JUNIT_OPTIONS.values()],
    ids=[f"body {k}" for k in JUNIT_BODIES] + [f"query {k}" for k in JUNIT_OPTIONS],
)
def test_a_bad_junit_report_is_refused_with_an_error_and_stores_nothing(
    client, target, document, changes
):
    options = {"receiver": target.phid, **(changes or {})}
    options = {key: value for key, value in options.items() if value is not None}
    with assert_nothing_stored():
        response = post_junit(client, document, options)
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] and response.json()["detail"]
