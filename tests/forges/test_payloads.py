"""Each forge's payloads read into the neutral ForgeEvent, from fixtures shaped like the
forges' documented examples; a payload of the wrong shape is refused naming the field."""

import pytest

from forges.events import ForgeEvent, PayloadError
from forges.payloads import PING_EVENTS, READERS, read_event
from tests.forges.conftest import FIXTURES, event_header, fixture_payload

PUSHED = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
GITHUB_URL = "https://github.com/acme/widgets.git"
GITLAB_URL = "https://gitlab.example.com/acme/platform/widgets.git"
GITEA_URL = "https://gitea.example.com/acme/widgets.git"
GITLAB_PATH = "acme/platform/widgets"


def read(forge: str, name: str) -> ForgeEvent | None:
    return read_event(forge, event_header(forge, name), fixture_payload(forge, name))


def push(url: str, path: str = "acme/widgets", **fields) -> ForgeEvent:
    defaults = {"kind": "push", "ref": "refs/heads/main", "commit": PUSHED}
    return ForgeEvent(repository=path, clone_url=url, **{**defaults, **fields})


def pull_request(url: str, ref: str, path: str = "acme/widgets", ignored: str = "") -> ForgeEvent:
    return ForgeEvent(
        kind="pull_request",
        repository=path,
        clone_url=url,
        ref=ref,
        commit=HEAD,
        pr_number=7,
        base_ref="refs/heads/main",
        ignored=ignored,
    )


ZERO = "0" * 40
EXPECTED = {
    ("github", "push__branch"): push(GITHUB_URL),
    ("github", "push__branch_created"): push(GITHUB_URL, ref="refs/heads/feature/login"),
    ("github", "push__tag"): push(GITHUB_URL, kind="tag", ref="refs/tags/v1.2.0"),
    ("github", "push__branch_deleted"): push(
        GITHUB_URL, ref="refs/heads/feature/login", commit=ZERO, deleted=True
    ),
    ("github", "pull_request__opened"): pull_request(GITHUB_URL, "refs/pull/7/head"),
    ("github", "pull_request__reopened"): pull_request(GITHUB_URL, "refs/pull/7/head"),
    ("github", "pull_request__synchronize"): pull_request(GITHUB_URL, "refs/pull/7/head"),
    ("github", "pull_request__closed"): pull_request(
        GITHUB_URL, "refs/pull/7/head", ignored="the pull request was closed"
    ),
    ("github", "issues__opened"): None,
    ("gitlab", "push_hook__branch"): push(GITLAB_URL, GITLAB_PATH),
    ("gitlab", "push_hook__branch_deleted"): push(
        GITLAB_URL, GITLAB_PATH, ref="refs/heads/feature/login", commit=ZERO, deleted=True
    ),
    ("gitlab", "tag_push_hook__created"): push(
        GITLAB_URL, GITLAB_PATH, kind="tag", ref="refs/tags/v1.2.0"
    ),
    ("gitlab", "merge_request_hook__open"): pull_request(
        GITLAB_URL, "refs/merge-requests/7/head", GITLAB_PATH
    ),
    ("gitlab", "merge_request_hook__update_with_commits"): pull_request(
        GITLAB_URL, "refs/merge-requests/7/head", GITLAB_PATH
    ),
    ("gitlab", "merge_request_hook__update_title"): pull_request(
        GITLAB_URL,
        "refs/merge-requests/7/head",
        GITLAB_PATH,
        ignored="the merge request was updated without new commits",
    ),
    ("gitlab", "merge_request_hook__close"): pull_request(
        GITLAB_URL,
        "refs/merge-requests/7/head",
        GITLAB_PATH,
        ignored="the merge request's action was close",
    ),
    ("gitea", "push__branch"): push(GITEA_URL),
    ("gitea", "push__tag"): push(GITEA_URL, kind="tag", ref="refs/tags/v1.2.0"),
    ("gitea", "pull_request__opened"): pull_request(GITEA_URL, "refs/pull/7/head"),
    ("gitea", "pull_request__synchronized"): pull_request(GITEA_URL, "refs/pull/7/head"),
    ("gitea", "pull_request__label_updated"): pull_request(
        GITEA_URL, "refs/pull/7/head", ignored="the pull request was label_updated"
    ),
}


@pytest.mark.parametrize("forge, name", EXPECTED, ids="/".join)
def test_each_fixture_reads_as_the_event_it_is(forge, name):
    assert read(forge, name) == EXPECTED[forge, name]


def test_every_fixture_is_read_by_a_test_and_every_event_read_has_a_fixture():
    files = {(path.parent.name, path.stem) for path in FIXTURES.glob("*/*.json")}
    pings = {(forge, f"{event}__hook") for forge, event in PING_EVENTS.items()}
    assert files == set(EXPECTED) | pings
    for forge, readers in READERS.items():
        for event in readers:
            assert any(event_header(f, name) == event for f, name in files if f == forge), (
                f"no fixture of {forge} {event!r}"
            )


def test_a_pull_requests_branch_is_its_base_and_a_pushs_its_own():
    assert read("github", "pull_request__opened").name == "main"
    assert read("github", "push__branch_created").name == "feature/login"
    assert read("github", "push__tag").name == "v1.2.0"


def test_a_push_to_a_ref_that_is_no_branch_or_tag_is_ignored_saying_so():
    payload = {**fixture_payload("github", "push__branch"), "ref": "refs/notes/commits"}
    assert read_event("github", "push", payload).ignored == (
        "the push is to refs/notes/commits, neither a branch nor a tag"
    )


def _without(payload: dict, path: str) -> dict:
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    del node[last]
    return payload


def _with(payload: dict, path: str, value) -> dict:
    *parents, last = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    node[last] = value
    return payload


@pytest.mark.parametrize(
    "forge, name, change, complaint",
    [
        ("github", "push__branch", ("-", "after"), "The payload has no after."),
        ("github", "push__branch", ("after", "HEAD"), "The payload's after is not a commit hash."),
        ("github", "push__branch", ("-", "repository"), "The payload has no repository.full_name"),
        ("github", "push__branch", ("ref", 7), "The payload's ref is not text."),
        ("github", "push__branch", ("ref", ""), "The payload's ref is empty."),
        ("github", "push__branch", ("ref", "r" * 300), "ref is longer than 255 characters"),
        (
            "github",
            "push__branch",
            ("repository.clone_url", "ext::sh -c touch% /tmp/pwned"),
            "repository.clone_url is not an http(s) URL",
        ),
        ("github", "pull_request__opened", ("number", "7"), "number is not a whole number"),
        ("github", "pull_request__opened", ("number", True), "number is not a whole number"),
        (
            "github",
            "pull_request__opened",
            ("-", "pull_request.head"),
            "The payload has no pull_request.head.sha.",
        ),
        ("gitlab", "push_hook__branch", ("-", "project"), "project.path_with_namespace"),
        (
            "gitlab",
            "merge_request_hook__open",
            ("-", "object_attributes.last_commit"),
            "object_attributes.last_commit.id",
        ),
        ("gitea", "pull_request__opened", ("-", "pull_request.base"), "pull_request.base.ref"),
    ],
)
def test_a_payload_of_the_wrong_shape_is_refused_naming_the_field(forge, name, change, complaint):
    payload = fixture_payload(forge, name)
    key, value = change
    payload = _without(payload, value) if key == "-" else _with(payload, key, value)
    with pytest.raises(PayloadError) as refused:
        read_event(forge, event_header(forge, name), payload)
    assert complaint in str(refused.value)


def test_a_payload_that_is_not_an_object_is_refused():
    with pytest.raises(PayloadError, match="not a JSON object"):
        read_event("github", "push", ["refs/heads/main"])
