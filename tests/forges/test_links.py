"""Links from a buildable to its forge: found from a configured forge or a repository URL on
a known host, spelled as each forge type spells its pages; none for an unknown host."""

import json

import pytest
from django.urls import reverse

from builds.models import Buildable
from forges import links
from forges.config import load_forges
from tests.ui.conftest import make_build, plan_of

SHA = "0123456789abcdef0123456789abcdef01234567"


def buildable(**fields) -> Buildable:
    return Buildable(**{"commit": SHA, "ref": "refs/heads/main", **fields})


@pytest.fixture
def configured(settings):
    settings.HARBOR_FORGES = load_forges(
        json.dumps(
            {
                "work": {
                    "type": "gitea",
                    "url": "https://git.example.org/api/v1",
                    "token": "t",
                    "webhook_secret": "s",
                },
                "lab": {
                    "type": "gitlab",
                    "url": "https://lab.example.org/api/v4",
                    "token": "t",
                    "webhook_secret": "s",
                },
            }
        )
    )


@pytest.mark.parametrize(
    ("repository", "commit", "ref"),
    [
        (
            "https://github.com/acme/widgets.git",
            f"https://github.com/acme/widgets/commit/{SHA}",
            "https://github.com/acme/widgets/tree/main",
        ),
        (
            "git@github.com:acme/widgets.git",
            f"https://github.com/acme/widgets/commit/{SHA}",
            "https://github.com/acme/widgets/tree/main",
        ),
        (
            "https://gitlab.com/group/sub/widgets",
            f"https://gitlab.com/group/sub/widgets/-/commit/{SHA}",
            "https://gitlab.com/group/sub/widgets/-/tree/main",
        ),
        (
            "https://codeberg.org/acme/widgets.git",
            f"https://codeberg.org/acme/widgets/commit/{SHA}",
            "https://codeberg.org/acme/widgets/src/branch/main",
        ),
    ],
)
def test_a_repository_on_a_known_host_links_its_commit_and_ref(repository, commit, ref):
    assert links.links(buildable(repository=repository)) == {"commit": commit, "ref": ref}


def test_a_configured_forges_host_is_recognised_in_a_repository_url(configured):
    found = links.links(buildable(repository="https://git.example.org/ops/deploy.git"))
    assert found["commit"] == f"https://git.example.org/ops/deploy/commit/{SHA}"


def test_a_buildable_from_a_forges_webhook_links_through_that_forge(configured):
    found = links.links(
        buildable(
            repository="ssh://git@lab.example.org:2222/x.git",
            forge="lab",
            forge_repository="team/app",
            ref="refs/tags/v1.2",
            revision="5",
        )
    )
    assert found == {
        "commit": f"https://lab.example.org/team/app/-/commit/{SHA}",
        "ref": "https://lab.example.org/team/app/-/tree/v1.2",
        "revision": "https://lab.example.org/team/app/-/merge_requests/5",
    }


@pytest.mark.parametrize(
    "repository",
    ["", "https://git.unknown.example/acme/widgets", "/srv/git/widgets", "javascript:x"],
)
def test_an_unknown_or_missing_repository_gives_no_links(repository):
    assert links.links(buildable(repository=repository)) == {}


@pytest.mark.django_db
def test_the_build_page_links_commit_and_ref_to_the_forge(client, user):
    client.force_login(user)
    build = make_build(
        plan_of(1), Buildable.objects.create(repository="https://github.com/acme/w", commit=SHA)
    )
    html = client.get(reverse("build-detail", args=[build.id])).content.decode()
    assert f'href="https://github.com/acme/w/commit/{SHA}"' in html


@pytest.mark.django_db
def test_a_buildable_without_a_repository_is_named_readably_not_by_its_phid(client, user):
    client.force_login(user)
    bare = Buildable.objects.create(object_phid="PHID-DIFF-abcdefghijklmnopqrst")
    build = make_build(plan_of(1), bare)
    html = client.get(reverse("build-list")).content.decode()
    assert f'<span class="repository">Buildable {bare.id} (no repository)</span>' in html
    assert f">{bare.phid}<" not in html and ">PHID-DIFF-abcdefghijklmnopqrst<" not in html
    assert build.get_absolute_url() in html
