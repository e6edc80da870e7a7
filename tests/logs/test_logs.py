"""Build logs: the per-target cap, byte-range reads, and the API that serves them."""

from contextlib import closing

import psycopg2
import pytest
from django.db import connection
from django.urls import reverse

from accounts.models import User
from builds import logs
from builds.models import BuildLog
from tests.steps.conftest import make_target

pytestmark = pytest.mark.django_db


@pytest.fixture
def target(buildable):
    return make_target("sleep", {}, buildable)


def test_a_live_log_grows_chunk_by_chunk_and_closes(target):
    live = logs.LiveLog(target, "command", "output")
    live.append("one\n")
    live.append("two\n")
    assert live.log.chunks.count() == 2
    assert BuildLog.objects.get(pk=live.log.pk).is_live
    live.close()
    log = BuildLog.objects.get(pk=live.log.pk)
    assert (log.text, log.is_live) == ("one\ntwo\n", False)


def test_the_cap_counts_all_of_a_targets_logs_and_says_what_was_cut(target, settings):
    settings.HARBOR_LOG_LIMIT_BYTES = 10
    logs.write(target, "http", "http.head", "123456")
    log = logs.write(target, "http", "http.body", "abcdefgh")
    assert log.text.startswith("abcd\n[harbor]")
    assert "4 bytes of this log were not stored" in log.text


def test_a_live_log_past_the_cap_says_so_once_and_counts_the_dropped_bytes(target, settings):
    settings.HARBOR_LOG_LIMIT_BYTES = 5
    live = logs.LiveLog(target, "command", "output")
    for piece in ("abc", "defg", "hij", "klmno"):
        live.append(piece)
    live.close()
    text = BuildLog.objects.get(pk=live.log.pk).text
    assert text.startswith("abcde\n[harbor]")
    assert text.count("HARBOR_LOG_LIMIT_BYTES") == 1
    assert text.endswith("[harbor] 10 bytes of output were not stored.\n")


def test_the_cap_never_splits_a_character(target, settings):
    settings.HARBOR_LOG_LIMIT_BYTES = 4
    log = logs.write(target, "x", "y", "aé€")  # 1 + 2 + 3 bytes
    assert log.text.startswith("aé\n")
    assert "3 bytes of this log were not stored" in log.text


def test_harbors_own_error_log_is_kept_whole_past_the_cap(target, settings):
    settings.HARBOR_LOG_LIMIT_BYTES = 3
    logs.write(target, "command", "output", "noise")
    error = logs.write(target, "harbor", "error", "The command exited with status 1.")
    assert error.text == "The command exited with status 1."


def test_nul_characters_are_stored_as_replacement_characters(target):
    log = logs.write(target, "x", "y", "a\x00b")
    assert log.text == "a\ufffdb"


def test_a_byte_range_spans_chunks_and_narrows_to_whole_characters(target):
    live = logs.LiveLog(target, "command", "output")
    for piece in ("héllo ", "wörld", "!"):  # chunk bytes: 7, 6, 1
        live.append(piece)
    log = live.log
    assert logs.log_size(log) == 14
    part = logs.read_range(log, 5, 5)
    assert (part.offset, part.end, part.text, part.size) == (5, 10, "o wö", 14)
    inside = logs.read_range(log, 2, 3)  # byte 2 continues "é": start moves to 3
    assert (inside.offset, inside.end, inside.text) == (3, 5, "ll")
    past = logs.read_range(log, 100, 10)
    assert (past.offset, past.end, past.text) == (14, 14, "")


@pytest.fixture
def long_log(target):
    live = logs.LiveLog(target, "command", "output")
    for number in range(100):
        live.append(f"line {number}\n")
    live.close()
    return live.log


def test_the_api_reads_a_byte_range(client, api_token, long_log):
    url = reverse("api-log-detail", args=[long_log.pk])
    response = client.get(
        url, {"offset": 7, "length": 14}, HTTP_AUTHORIZATION=f"Bearer {api_token}"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "line 1\nline 2\n"
    assert (body["offset"], body["end"], body["is_live"]) == (7, 21, False)
    assert body["size"] == len(long_log.text.encode())
    assert body["target"] == long_log.target.phid


def test_the_api_refuses_a_bad_range_and_an_unknown_log(client, api_token, long_log):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_token}"}
    url = reverse("api-log-detail", args=[long_log.pk])
    assert client.get(url, {"offset": -1}, **auth).status_code == 400
    assert client.get(url, {"length": 0}, **auth).status_code == 400
    assert client.get(url, {"offset": ""}, **auth).status_code == 400, "not read from 0"
    missing = reverse("api-log-detail", args=[long_log.pk + 1000])
    assert client.get(missing, **auth).status_code == 404


def test_the_api_needs_a_signed_in_user(client, long_log):
    for name in ("api-log-detail", "api-log-download"):
        assert client.get(reverse(name, args=[long_log.pk])).status_code in (401, 403)


def test_the_whole_log_downloads_as_text_with_a_token_or_a_session(client, api_token, long_log):
    url = reverse("api-log-download", args=[long_log.pk])
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {api_token}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert b"".join(response.streaming_content).decode() == long_log.text

    client.force_login(User.objects.get(username="alice"))
    assert client.get(url).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_whole_log_is_seen_by_others_with_its_text_or_not_at_all(target, monkeypatch):
    """A reader (the UI, the API, a test waiting for the log) on another connection must
    not find the log row before its text is stored."""
    seen_early = []
    store = logs._store

    def store_and_look(log, text):
        with closing(psycopg2.connect(**_dsn())) as other, other.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM builds_buildlog WHERE id = %s", [log.pk])
            seen_early.append(cursor.fetchone()[0])
        store(log, text)

    monkeypatch.setattr(logs, "_store", store_and_look)
    log = logs.write(target, "harbor", "aborted", "Step stopped.")
    assert seen_early == [0]
    assert BuildLog.objects.get(pk=log.pk).text == "Step stopped."


def _dsn() -> dict:
    db = connection.settings_dict
    return {"dbname": db["NAME"], "user": db["USER"], "host": db["HOST"], "port": db["PORT"]}
