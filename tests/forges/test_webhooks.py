"""What a verified webhook does: a push or a pull request starts the builds of the plans
its triggers match, recorded as one delivery; anything else is answered and ignored; the
same delivery again starts nothing; bad input is a JSON 4xx with nothing stored."""

import json

import pytest
from django.test import override_settings

from builds.models import Build, Buildable
from forges.models import Delivery
from tests.api.test_limits import CountingStream
from tests.forges.conftest import (
    SECRETS,
    TOKENS,
    assert_nothing_stored,
    fixture_body,
    make_triggered_plan,
    post_body,
    post_fixture,
    signed_headers,
    trigger,
)

pytestmark = pytest.mark.django_db

HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
PUSHED = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"


def started(response) -> list[Build]:
    return [Build.objects.get(pk=pk) for pk in response.json()["builds"]]


def test_a_push_starts_a_build_of_every_plan_it_triggers_and_no_other(client):
    unit = make_triggered_plan("unit", trigger("github"))
    lint = make_triggered_plan("lint", trigger("github", branches=["main"]))
    make_triggered_plan("elsewhere", {**trigger("github"), "repository": "acme/other"})
    make_triggered_plan("gitea-only", trigger("gitea"))
    response = post_fixture(client, "github", "push__branch", delivery="d-1")
    assert response.status_code == 202
    assert response.json() == {"delivery": "d-1", "builds": response.json()["builds"]}
    builds = started(response)
    assert [build.plan for build in builds] == [unit, lint]
    assert all(build.status == Build.Status.BUILDING for build in builds)
    buildable = builds[0].buildable
    assert builds[1].buildable == buildable
    assert (buildable.repository, buildable.ref, buildable.commit) == (
        "https://github.com/acme/widgets.git",
        "refs/heads/main",
        PUSHED,
    )
    assert (buildable.revision, buildable.base_ref) == ("", "")
    assert buildable.status == Buildable.Status.BUILDING


def test_the_delivery_is_recorded_with_the_builds_it_started(client):
    make_triggered_plan("unit", trigger("gitlab"))
    response = post_fixture(client, "gitlab", "push_hook__branch", delivery="uuid-1")
    delivery = Delivery.objects.get()
    assert (delivery.forge, delivery.delivery_id, delivery.event, delivery.kind) == (
        "gitlab",
        "uuid-1",
        "Push Hook",
        "push",
    )
    assert (delivery.repository, delivery.ref, delivery.commit) == (
        "acme/platform/widgets",
        "refs/heads/main",
        PUSHED,
    )
    assert list(delivery.builds.values_list("pk", flat=True)) == response.json()["builds"]


def test_a_repository_is_matched_without_regard_to_case(client):
    make_triggered_plan("unit", {**trigger("github"), "repository": "ACME/Widgets"})
    assert len(post_fixture(client, "github", "push__branch").json()["builds"]) == 1


def test_a_branch_no_trigger_globs_is_ignored_saying_so_and_recorded(client):
    make_triggered_plan("release", trigger("github", branches=["main", "release/*"]))
    response = post_fixture(client, "github", "push__branch_created", delivery="d-2")
    assert response.status_code == 202
    assert response.json() == {
        "delivery": "d-2",
        "builds": [],
        "ignored": "branch 'feature/login' matches no trigger's branches",
    }
    assert not Build.objects.exists()
    assert Delivery.objects.get().ignored == response.json()["ignored"]


def test_a_glob_matches_branches_below_it(client):
    make_triggered_plan("features", trigger("github", branches=["feature/*"]))
    assert len(post_fixture(client, "github", "push__branch_created").json()["builds"]) == 1


def test_a_push_no_plan_triggers_on_is_ignored_saying_so(client):
    response = post_fixture(client, "github", "push__branch")
    assert response.status_code == 202
    assert response.json()["ignored"] == "no plan has a trigger for github acme/widgets"
    assert not Build.objects.exists()


@pytest.mark.parametrize(
    "forge, name",
    [("github", "push__tag"), ("gitlab", "tag_push_hook__created"), ("gitea", "push__tag")],
)
def test_a_tag_push_is_ignored_unless_a_trigger_asks_for_tags(client, forge, name):
    make_triggered_plan("unit", trigger(forge, events=["push", "pull_request"]))
    ignored = post_fixture(client, forge, name)
    assert ignored.json()["builds"] == []
    assert ignored.json()["ignored"] == "no trigger of " + trigger(forge)["repository"] + (
        " asks for tag events"
    )
    release = make_triggered_plan("release", trigger(forge, events=["tag"], tags=["v1.*"]))
    built = started(post_fixture(client, forge, name))
    assert [build.plan for build in built] == [release]
    assert built[0].buildable.ref == "refs/tags/v1.2.0"


def test_a_tag_no_trigger_globs_is_ignored(client):
    make_triggered_plan("release", trigger("github", events=["tag"], tags=["release-*"]))
    response = post_fixture(client, "github", "push__tag")
    assert response.json()["ignored"] == "tag 'v1.2.0' matches no trigger's tags"


@pytest.mark.parametrize(
    "forge, name", [("github", "push__branch_deleted"), ("gitlab", "push_hook__branch_deleted")]
)
def test_a_branch_deletion_is_ignored(client, forge, name):
    make_triggered_plan("unit", trigger(forge))
    response = post_fixture(client, forge, name)
    assert response.status_code == 202
    assert response.json()["ignored"] == "the push deletes the branch 'feature/login'"
    assert not Build.objects.exists() and not Buildable.objects.exists()


@pytest.mark.parametrize(
    "forge, name, ref",
    [
        ("github", "pull_request__opened", "refs/pull/7/head"),
        ("github", "pull_request__synchronize", "refs/pull/7/head"),
        ("github", "pull_request__reopened", "refs/pull/7/head"),
        ("gitlab", "merge_request_hook__open", "refs/merge-requests/7/head"),
        ("gitlab", "merge_request_hook__update_with_commits", "refs/merge-requests/7/head"),
        ("gitea", "pull_request__opened", "refs/pull/7/head"),
        ("gitea", "pull_request__synchronized", "refs/pull/7/head"),
    ],
)
def test_a_pull_request_with_new_code_starts_a_build_with_its_number_and_base(
    client, forge, name, ref
):
    plan = make_triggered_plan("review", trigger(forge, events=["pull_request"]))
    make_triggered_plan("pushes-only", trigger(forge))
    response = post_fixture(client, forge, name)
    assert response.status_code == 202
    (build,) = started(response)
    assert build.plan == plan
    buildable = build.buildable
    assert (buildable.ref, buildable.commit) == (ref, HEAD)
    assert (buildable.revision, buildable.base_ref) == ("7", "refs/heads/main")
    assert build.plan_snapshot[0]["key"] == "s"


def test_a_pull_request_is_filtered_by_the_branch_it_targets(client):
    make_triggered_plan("review", trigger("github", events=["pull_request"], branches=["dev"]))
    response = post_fixture(client, "github", "pull_request__opened")
    assert response.json()["ignored"] == "branch 'main' matches no trigger's branches"


def test_a_pull_request_and_a_push_of_the_same_commit_are_separate_buildables(client):
    make_triggered_plan("all", trigger("github", events=["push", "pull_request"]))
    payload = json.loads(fixture_body("github", "push__branch"))
    payload["after"] = HEAD
    push = post_body(client, "github", "push", json.dumps(payload).encode())
    pull = post_fixture(client, "github", "pull_request__opened")
    (pushed,), (pulled,) = started(push), started(pull)
    assert pushed.buildable != pulled.buildable
    assert (pushed.buildable.revision, pulled.buildable.revision) == ("", "7")


@pytest.mark.parametrize(
    "forge, name, why",
    [
        ("github", "pull_request__closed", "the pull request was closed"),
        ("gitlab", "merge_request_hook__close", "the merge request's action was close"),
        (
            "gitlab",
            "merge_request_hook__update_title",
            "the merge request was updated without new commits",
        ),
        ("gitea", "pull_request__label_updated", "the pull request was label_updated"),
    ],
)
def test_a_pull_request_without_new_code_is_ignored_saying_why(client, forge, name, why):
    make_triggered_plan("review", trigger(forge, events=["pull_request"]))
    response = post_fixture(client, forge, name)
    assert response.status_code == 202
    assert response.json()["ignored"] == why
    assert not Build.objects.exists()


def test_the_same_delivery_again_starts_nothing_and_answers_the_first_ones_builds(client):
    make_triggered_plan("unit", trigger("github"))
    first = post_fixture(client, "github", "push__branch", delivery="d-7")
    with assert_nothing_stored():
        again = post_fixture(client, "github", "push__branch", delivery="d-7")
    assert again.status_code == 200
    assert again.json() == {
        "delivery": "d-7",
        "builds": first.json()["builds"],
        "status": "duplicate",
    }


def test_the_same_delivery_id_from_another_forge_is_another_delivery(client):
    make_triggered_plan("unit", trigger("github"), trigger("gitea"))
    post_fixture(client, "github", "push__branch", delivery="same")
    response = post_fixture(client, "gitea", "push__branch", delivery="same")
    assert response.status_code == 202 and len(response.json()["builds"]) == 1


def test_a_github_ping_is_answered_200_and_stores_nothing(client):
    with assert_nothing_stored():
        response = post_fixture(client, "github", "ping__hook", delivery="p-1")
    assert response.status_code == 200
    assert response.json() == {"status": "pong", "delivery": "p-1"}


def test_an_event_that_never_builds_is_accepted_as_ignored_and_not_stored(client):
    make_triggered_plan("unit", trigger("github"))
    with assert_nothing_stored():
        response = post_fixture(client, "github", "issues__opened", delivery="i-1")
    assert response.status_code == 202
    assert response.json() == {
        "delivery": "i-1",
        "builds": [],
        "ignored": "'issues' events start no builds",
    }


@pytest.mark.parametrize(
    "body, code, detail",
    [
        (b'{"ref": "refs/heads/main", "after": ', "invalid_json", "The body is not valid JSON"),
        (b"\xff\xfe", "invalid_json", "The body is not UTF-8"),
        (b'{"ref": "refs/heads/main"}', "invalid_payload", "The payload has no after."),
        (b'["push"]', "invalid_payload", "The payload is not a JSON object."),
        (b'{"ref": "a\\u0000b"}', "invalid_json", "NUL"),
    ],
)
def test_a_malformed_or_misshapen_payload_is_400_and_stores_nothing(client, body, code, detail):
    make_triggered_plan("unit", trigger("github"))
    with assert_nothing_stored():
        response = post_body(client, "github", "push", body)
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert detail in response.json()["detail"]


def test_a_pull_request_payload_sent_as_a_push_is_400(client):
    make_triggered_plan("unit", trigger("github"))
    body = fixture_body("github", "pull_request__opened")
    with assert_nothing_stored():
        response = post_body(client, "github", "push", body)
    assert response.status_code == 400
    assert response.json()["detail"] == "The payload has no ref."


@pytest.mark.parametrize(
    "header, value",
    [
        ("HTTP_X_GITHUB_EVENT", None),
        ("HTTP_X_GITHUB_DELIVERY", None),
        ("HTTP_X_GITHUB_DELIVERY", "x" * 101),
    ],
)
def test_a_signed_webhook_without_its_event_or_delivery_header_is_400(client, header, value):
    make_triggered_plan("unit", trigger("github"))
    with assert_nothing_stored():
        response = post_fixture(client, "github", "push__branch", **{header: value})
    assert response.status_code == 400
    assert response.json()["error"] == "missing_header"


@pytest.mark.parametrize(
    "forge, name, header",
    [
        ("gitlab", "push_hook__branch", "HTTP_X_GITLAB_EVENT"),
        ("gitlab", "push_hook__branch", "HTTP_X_GITLAB_EVENT_UUID"),
        ("gitea", "push__branch", "HTTP_X_GITEA_EVENT"),
        ("gitea", "push__branch", "HTTP_X_GITEA_DELIVERY"),
    ],
)
def test_a_gitlab_or_gitea_webhook_without_its_event_or_delivery_header_is_400(
    client, forge, name, header
):
    make_triggered_plan("unit", trigger(forge))
    with assert_nothing_stored():
        response = post_fixture(client, forge, name, **{header: None})
    assert response.status_code == 400
    assert response.json()["error"] == "missing_header"


def test_a_20_mb_body_is_413_with_the_default_limit_and_stores_nothing(client):
    make_triggered_plan("unit", trigger("github"))
    payload = json.loads(fixture_body("github", "push__branch"))
    payload["padding"] = "x" * (20 * 1024 * 1024)
    with assert_nothing_stored():
        response = post_body(client, "github", "push", json.dumps(payload).encode())
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


@override_settings(HARBOR_API_MAX_BODY_BYTES=2000)
def test_a_body_over_the_api_limit_is_413_and_stores_nothing(client):
    make_triggered_plan("unit", trigger("github"))
    payload = json.loads(fixture_body("github", "push__branch"))
    payload["padding"] = "x" * 2000
    with assert_nothing_stored():
        response = post_body(client, "github", "push", json.dumps(payload).encode())
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


@override_settings(HARBOR_API_MAX_BODY_BYTES=2000)
def test_a_body_declared_over_the_limit_is_413_before_it_is_read(client):
    body = b"{" + b" " * 5000 + b"}"
    stream = CountingStream(body)
    headers = signed_headers("github", "push", body, "big-1")
    with assert_nothing_stored():
        response = client.generic(
            "POST",
            "/hooks/github",
            content_type="application/json",
            CONTENT_LENGTH=str(len(body)),
            **{"wsgi.input": stream},
            **headers,
        )
    assert response.status_code == 413
    assert stream.bytes_read == 0


def test_a_form_encoded_webhook_is_415_saying_to_send_json(client):
    make_triggered_plan("unit", trigger("github"))
    body = b"payload=%7B%7D"
    headers = signed_headers("github", "push", body, "f-1")
    with assert_nothing_stored():
        response = client.post(
            "/hooks/github", body, content_type="application/x-www-form-urlencoded", **headers
        )
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


def test_a_disabled_plan_is_not_started(client):
    plan = make_triggered_plan("unit", trigger("github"))
    type(plan).objects.filter(pk=plan.pk).update(status="disabled")
    assert post_fixture(client, "github", "push__branch").json()["builds"] == []


def test_no_answer_or_record_shows_the_forges_token_or_secret(client):
    make_triggered_plan("unit", trigger("gitlab"))
    answers = [
        post_fixture(client, "gitlab", "push_hook__branch").content,
        post_fixture(client, "gitlab", "push_hook__branch", HTTP_X_GITLAB_TOKEN="wrong").content,
        post_body(client, "gitlab", "Push Hook", b"{").content,
    ]
    stored = json.dumps(list(Delivery.objects.values()), default=str)
    for text in [*(answer.decode() for answer in answers), stored]:
        assert SECRETS["gitlab"] not in text and TOKENS["gitlab"] not in text
