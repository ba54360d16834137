"""CODEOWNERS as GitHub reads it, fetched from where GitHub looks, kept per repository and ref and
asked again only conditionally; and the owners of each changed file in the suspects' short list.

The matching cases are GitHub's own: the example file of "About code owners" (its comments say
which files each line owns) and the syntax exceptions it lists."""

from __future__ import annotations

import asyncio

import pytest

from slackbot.clients.github_changes import GitHubChanges
from slackbot.clock import FakeClock
from slackbot.config import Playbook
from slackbot.slack.suspects import suspect_lines
from slackbot.suggest.changes import suspects, touched
from slackbot.suggest.codeowners import parse
from tests.fakes.github_api import fake_github

# GitHub's example CODEOWNERS (docs: "About code owners", "Example of a CODEOWNERS file").
GITHUB_EXAMPLE = """\
# This is a comment.
# Each line is a file pattern followed by one or more owners.

# These owners will be the default owners for everything in
# the repo. Unless a later match takes precedence,
# @global-owner1 and @global-owner2 will be requested for
# review when someone opens a pull request.
*       @global-owner1 @global-owner2

# Order is important; the last matching pattern takes the most
# precedence. When someone opens a pull request that only
# modifies JS files, only @js-owner and not the global
# owner(s) will be requested for a review.
*.js    @js-owner #This is an inline comment.

# You can also use email addresses if you prefer. They'll be
# used to look up users just like we do for commit author
# emails.
*.go docs@example.com

# Teams can be specified as code owners as well. Teams should
# be identified in the format @org/team-name. Teams must have
# explicit write access to the repository. In this example,
# the octocats team in the octo-org organization owns all .txt files.
*.txt @octo-org/octocats

# In this example, @doctocat owns any files in the build/logs
# directory at the root of the repository and any of its
# subdirectories.
/build/logs/ @doctocat

# The `docs/*` pattern will match files like
# `docs/getting-started.md` but not further nested files like
# `docs/build-app/troubleshooting.md`.
docs/*  docs@example.com

# In this example, @octocat owns any file in an apps directory
# anywhere in your repository.
apps/ @octocat

# In this example, @doctocat owns any file in the `/docs`
# directory in the root of your repository and any of its
# subdirectories.
/docs/ @doctocat

# In this example, any change inside the `/scripts` directory
# will require approval from @doctocat or @octocat.
/scripts/ @doctocat @octocat

# In this example, @octocat owns any file in a `/logs` directory such as
# `/build/logs`, `/scripts/logs`, and `/deeply/nested/logs`. Any changes
# in a `/logs` directory will require approval from @octocat.
**/logs @octocat

# In this example, @octocat owns any file in the `/apps`
# directory in the root of your repository except for the `/apps/github`
# subdirectory, as its owners are left empty. Without an owner, changes
# to `apps/github` can be made with the approval of any user who has
# write access to the repository.
/apps/ @octocat
/apps/github
"""


@pytest.mark.parametrize(
    ("path", "owners"),
    [
        ("README.md", ("@global-owner1", "@global-owner2")),  # the default owners
        ("src/app/index.js", ("@js-owner",)),  # the later *.js wins; its inline comment is no owner
        ("cmd/main.go", ("docs@example.com",)),
        ("notes/todo.txt", ("@octo-org/octocats",)),
        ("build/logs/build-app/error.txt", ("@octocat",)),  # /build/logs/, then **/logs comes later
        ("build/output.bin", ("@global-owner1", "@global-owner2")),
        ("x/build/logs2/error.bin", ("@global-owner1", "@global-owner2")),
        # docs/* owns direct children only (GitHub's documented difference); /docs/ comes later
        ("docs/getting-started.md", ("@doctocat",)),
        ("docs/build-app/troubleshooting.md", ("@doctocat",)),
        ("services/apps/main.py", ("@octocat",)),  # apps/ at any depth
        ("scripts/tools/run.sh", ("@doctocat", "@octocat")),
        ("deeply/nested/logs/app.bin", ("@octocat",)),
        ("apps/web/index.html", ("@octocat",)),
        ("apps/github/hooks.rb", ()),  # the last match has no owners: unowned
    ],
)
def test_githubs_example_file(path: str, owners: tuple[str, ...]) -> None:
    assert parse(GITHUB_EXAMPLE).owners(path) == owners


@pytest.mark.parametrize(
    ("pattern", "owned", "not_owned"),
    [
        ("docs/*", ["docs/getting-started.md"], ["docs/build-app/troubleshooting.md", "nested/docs/a.md", "docs"]),
        ("/build/logs/", ["build/logs/a/b.txt"], ["src/build/logs/a.txt", "build/logs"]),
        ("apps/", ["apps/a.py", "x/y/apps/a.py"], ["apps", "myapps/a.py"]),
        ("**/logs", ["logs/a", "a/b/logs/c"], ["a/logsx/c"]),
        ("/src/**/test.py", ["src/test.py", "src/a/b/test.py"], ["lib/src/test.py"]),
        ("logs/**", ["logs/a", "logs/a/b"], ["logs", "x/logs/a"]),
        ("/docs", ["docs/index.md", "docs"], ["documentation/index.md", "x/docs/a"]),
        ("*.js", ["a.js", "a/b/c.js"], ["a.jsx", "a.ts"]),
        ("/.github/*.yml", [".github/labels.yml"], [".github/workflows/ci.yml"]),
        ("src/*/lib", ["src/a/lib/x.ts"], ["src/a/b/lib/x.ts"]),
        ("f?o", ["foo", "a/fxo"], ["fo", "fooo"]),
        ("README.md", ["README.md", "a/README.md"], ["readme.md"]),  # case sensitive
        (r"\#notes", ["#notes"], ["notes"]),  # \# escapes a pattern starting with #
        ("/", [], ["a", "a/b"]),
    ],
)
def test_gitignore_style_patterns_as_github_applies_them(pattern: str, owned: list[str], not_owned: list[str]) -> None:
    rules = parse(f"{pattern} @team")
    assert [p for p in owned if rules.owners(p) != ("@team",)] == []
    assert [p for p in not_owned if rules.owners(p)] == []


def test_lines_github_cannot_read_are_skipped_not_fatal() -> None:
    rules = parse("* @all\n!secrets/ @sec\n[Dd]ocs/ @docs\nlib/ not-an-owner\n   \n# only a comment\n")
    assert [(s.line, s.reason.split(" ")[0]) for s in rules.skipped] == [
        (2, "negation"),
        (3, "character"),
        (4, "'not-an-owner'"),
    ]
    assert rules.owners("secrets/key") == ("@all",) and rules.owners("Docs/a.md") == ("@all",)


def test_codeowners_comes_from_the_first_of_githubs_places_and_is_asked_again_conditionally() -> None:
    sha = "b" * 40
    with fake_github(repos=("acme/dispatch",)) as github:
        github.add_file("acme/dispatch", "docs/CODEOWNERS", "* @docs-place")
        github.add_file("acme/dispatch", "CODEOWNERS", "* @root-place")
        api = GitHubChanges(github.url, github.token, FakeClock())

        assert asyncio.run(api.codeowners("acme/dispatch", sha)) == "* @root-place"
        assert [(r.path.split("/contents/")[1], r.status) for r in github.requests] == [
            (".github/CODEOWNERS", 404),
            ("CODEOWNERS", 200),
        ]
        # Again at the same sha: the missing .github/CODEOWNERS is not asked for (a sha never
        # changes), and the file is asked for with its ETag: a 304, free of rate limit.
        github.requests.clear()
        assert asyncio.run(api.codeowners("acme/dispatch", sha)) == "* @root-place"
        (again,) = github.requests
        assert (again.path.endswith("/contents/CODEOWNERS"), again.status) == (True, 304)
        assert again.headers["if-none-match"].startswith('W/"') and again.query["ref"] == [sha]

        # On a branch, the file changed: a 200 with the new text, cached under its new ETag.
        github.requests.clear()
        asyncio.run(api.codeowners("acme/dispatch", "main"))
        github.add_file("acme/dispatch", "CODEOWNERS", "* @new-owners")
        assert asyncio.run(api.codeowners("acme/dispatch", "main")) == "* @new-owners"
        assert [r.status for r in github.requests if r.path.endswith("/contents/CODEOWNERS")] == [200, 200]
        # A ref caches on its own: another sha reads the files afresh.
        github.requests.clear()
        assert asyncio.run(api.codeowners("acme/dispatch", "c" * 40)) == "* @new-owners"
        assert [r.status for r in github.requests] == [404, 200]


def test_the_short_list_names_the_owners_of_each_changed_file(runbook: Playbook) -> None:
    codeowners = "* @acme/everyone\ndrizzle/ @acme/schema-owners\n/docs/\n/tests/\n"
    changed = ["drizzle/0042_add_tenant.sql", "docs/notes.md", "tests/integration/adversarial/dup.test.ts"]
    files = touched(runbook, [*changed, "src/<!channel>.ts"], codeowners)
    found = suspects([], files, base="a" * 40, head="b" * 40, truncated=False)
    assert suspect_lines(found) == [
        "`drizzle/0042_add_tenant.sql` → @acme/schema-owners",
        "`docs/notes.md` → no owner",  # CODEOWNERS leaves it unowned, and no class's scope holds it
        # unowned in CODEOWNERS, but the flake class's scope holds it: its owner, and why
        "`tests/integration/adversarial/dup.test.ts` → @concurrency-owners _(scope of flake_concurrency)_",
        "`src/&lt;!channel&gt;.ts` → @acme/everyone",  # a file's name never pings anyone
        "Owners: @acme/everyone, @acme/schema-owners",
    ]
    many = suspects(
        [], touched(runbook, [f"src/f{i}.ts" for i in range(12)], codeowners), base="a", head="b", truncated=False
    )
    assert suspect_lines(many)[-2:] == ["…and 7 more changed files", "Owners: @acme/everyone"]
