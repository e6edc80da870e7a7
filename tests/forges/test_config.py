"""``HARBOR_FORGES``: each entry checked at start, refused naming the entry and the field,
never a token or secret; neither shows in the parsed forge's repr."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from forges.config import Forge, load_forges
from tests.permissions.test_production_settings import GOOD_KEY, manage

SECRET = "s3cret-hook-value"
TOKEN = "tok-5a9c-value"


def entry(**fields) -> dict:
    return {"type": "github", "token": TOKEN, "webhook_secret": SECRET, **fields}


def test_it_reads_each_forge_with_github_defaulting_to_its_public_api():
    forges = load_forges(
        json.dumps(
            {
                "github": entry(),
                "ghe": entry(url="https://ghe.example.com/api/v3/"),
                "lab": entry(type="gitlab", url="https://gitlab.example.com/api/v4"),
                "tea": entry(type="gitea", url="http://gitea.local:3000/api/v1"),
            }
        )
    )
    assert forges["github"] == Forge("github", "github", "https://api.github.com", TOKEN, SECRET)
    assert forges["ghe"].url == "https://ghe.example.com/api/v3"
    assert (forges["lab"].type, forges["lab"].url) == (
        "gitlab",
        "https://gitlab.example.com/api/v4",
    )
    assert forges["tea"].url == "http://gitea.local:3000/api/v1"


def test_a_forge_never_shows_its_token_or_secret_in_its_repr():
    forge = load_forges(json.dumps({"github": entry()}))["github"]
    assert TOKEN not in repr(forge) and SECRET not in repr(forge)
    assert "github" in repr(forge)


@pytest.mark.parametrize(
    "value, complaint",
    [
        (entry(type="bitbucket"), "has type 'bitbucket'; it must be one of: github, gitlab, gitea"),
        (entry(type="gitlab"), "needs 'url', the gitlab API's base URL"),
        (entry(type="gitea"), "needs 'url', the gitea API's base URL"),
        (entry(url="ftp://example.com"), "'url' must be an http(s)://host/… URL"),
        (entry(url="https://user:pw@example.com/api/v3"), "without credentials"),
        (entry(url=7), "'url' must be an http(s)://host/… URL"),
        (entry(token=""), "needs 'token', a non-empty string"),
        (entry(webhook_secret=None), "needs 'webhook_secret', a non-empty string"),
        (entry(webhook_secret="a\nb"), "'webhook_secret' holds a line break"),
        (entry(secret=SECRET), "unexpected fields ['secret']"),
        ("github", "must be a JSON object"),
    ],
)
def test_a_malformed_entry_is_refused_naming_the_entry_and_never_a_secret(value, complaint):
    with pytest.raises(ImproperlyConfigured) as refused:
        load_forges(json.dumps({"main": value}))
    message = str(refused.value)
    assert "HARBOR_FORGES entry 'main'" in message
    assert complaint in message
    assert SECRET not in message and TOKEN not in message


@pytest.mark.parametrize("name", ["", "has space", "a/b", "-dash", "x" * 65])
def test_a_name_that_cannot_be_a_webhook_path_segment_is_refused(name):
    with pytest.raises(ImproperlyConfigured, match="a forge's name is"):
        load_forges(json.dumps({name: entry()}))


@pytest.mark.parametrize("text", ["{", "[]", '"github"'])
def test_text_that_is_not_a_json_object_is_refused(text):
    with pytest.raises(ImproperlyConfigured, match="HARBOR_FORGES"):
        load_forges(text)


def test_harbor_refuses_to_start_with_a_malformed_forge_naming_it_not_its_secret():
    refused = manage(
        "check",
        SECRET_KEY=GOOD_KEY,
        HARBOR_FORGES=json.dumps({"corp": entry(type="gitlab", webhook_secret=SECRET)}),
    )
    assert refused.returncode != 0
    assert "HARBOR_FORGES entry 'corp' needs 'url'" in refused.stderr
    assert SECRET not in refused.stderr and TOKEN not in refused.stderr
