"""GitHubIssuesTracker against the fake GitHub REST server over real HTTP."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from slackbot.clients.github_issues import GitHubIssuesTracker, fingerprint_label, fingerprint_marker
from slackbot.clients.tracker import BeadRequest, BeadTracker, TrackerError
from tests.fakes.github_api import FakeGitHub, fake_github

TOKEN = "ghp_secret_token_value"
REPO = "acme/widgets"
FP = "3f2a9c0d1e4b5a6978877665544332211aabbccddeeff00112233445566778899"


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with fake_github(token=TOKEN, repos=(REPO,)) as server:
        yield server


@pytest.fixture
async def tracker(gh: FakeGitHub) -> AsyncIterator[GitHubIssuesTracker]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield GitHubIssuesTracker(gh.url, TOKEN, REPO, client=client)


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BASE_REQUEST = BeadRequest(
    title="integration: test_checkout failed on main",
    body="log excerpt",
    priority=1,
    labels=("ci", "class:infra"),
    external_ref="https://github.com/acme/widgets/actions/runs/42",
    fingerprint="fp-base",
)


def request(fp: str = FP, **overrides: Any) -> BeadRequest:
    return dataclasses.replace(BASE_REQUEST, fingerprint=fp, **overrides)


async def test_create_sends_github_headers_and_returns_a_bead(gh: FakeGitHub, tracker: GitHubIssuesTracker) -> None:
    assert isinstance(tracker, BeadTracker) and tracker.name == "github"
    assert await tracker.version() == "github-rest-2022-11-28"
    bead = await tracker.create(request(assignee="alice"))
    assert bead.id == "gh-1"
    assert bead.url == "https://github.com/acme/widgets/issues/1"
    assert bead.status == "open"
    assert set(bead.labels) == {"ci", "class:infra", "priority:P1", fingerprint_label(FP)}
    assert len(fingerprint_label(FP)) <= 50

    post = next(r for r in gh.requests if r.method == "POST")
    assert post.path == "/repos/acme/widgets/issues"
    assert post.headers["accept"] == "application/vnd.github+json"
    assert post.headers["x-github-api-version"] == "2022-11-28"
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert post.body["assignees"] == ["alice"]
    assert fingerprint_marker(FP) in post.body["body"]
    assert "https://github.com/acme/widgets/actions/runs/42" in post.body["body"]

    stored = gh.issue(REPO, 1)
    assert stored["labels"][0].keys() >= {"id", "name", "color"}  # labels come back as objects


async def test_create_dedups_by_fingerprint_including_closed(gh: FakeGitHub, tracker: GitHubIssuesTracker) -> None:
    first = await tracker.create(request())
    assert await tracker.create(request(title="another title")) == first
    assert await tracker.find_by_fingerprint(FP) == first
    list_call = next(r for r in gh.requests if r.method == "GET")
    assert list_call.query["state"] == ["all"] and list_call.query["labels"] == [fingerprint_label(FP)]

    await tracker.close(first.id, "fixed")
    again = await tracker.create(request())
    assert again.id == first.id and again.status == "closed"

    # same 32-char label prefix, different fingerprint: the body marker keeps them apart
    cousin = FP[:32] + "0" * (len(FP) - 32)
    other = await tracker.create(request(cousin))
    assert other.id == "gh-2"
    assert await tracker.find_by_fingerprint(FP) == (await tracker.show(first.id))
    assert await tracker.find_by_fingerprint("f" * 64) is None


async def test_comment_update_close_reopen_show(gh: FakeGitHub, tracker: GitHubIssuesTracker) -> None:
    bead = await tracker.create(request())
    await tracker.comment(bead.id, "seen again on run 43")

    updated = await tracker.update(bead.id, status="in_progress", priority=0, add_labels=["sev1"])
    assert updated.status == "in_progress"
    assert "priority:P0" in updated.labels and "priority:P1" not in updated.labels and "sev1" in updated.labels

    closed = await tracker.close(bead.id, "fixed by #123")
    assert closed.status == "closed"
    assert gh.issue(REPO, 1)["state_reason"] == "completed"

    reopened = await tracker.reopen(bead.id, "failed again")
    assert reopened.status != "closed"
    assert gh.issue(REPO, 1)["state"] == "open" and gh.issue(REPO, 1)["state_reason"] == "reopened"

    shown = await tracker.show(bead.id)
    assert (shown.id, shown.title, shown.url) == (bead.id, bead.title, bead.url)
    bodies = [c["body"] for c in gh.comments[(REPO, 1)]]
    assert bodies == ["seen again on run 43", "Closed: fixed by #123", "Reopened: failed again"]

    assert (await tracker.update(bead.id, status="closed")).status == "closed"
    assert (await tracker.update(bead.id, status="open")).status == "open"


async def test_server_errors_and_rate_limits_are_retryable(gh: FakeGitHub, tracker: GitHubIssuesTracker) -> None:
    gh.fail_next(1, 500)
    with pytest.raises(TrackerError) as caught:
        await tracker.create(request())
    assert caught.value.retryable and "500" in caught.value.message

    gh.fail_next(1, 429, headers={"Retry-After": "7"})
    with pytest.raises(TrackerError) as caught:
        await tracker.show("gh-1")
    assert caught.value.retryable and caught.value.retry_after == 7.0
    assert "retry after 7s" in caught.value.message

    gh.fail_next(1, 403, message="You have exceeded a secondary rate limit", headers={"Retry-After": "60"})
    with pytest.raises(TrackerError) as caught:
        await tracker.show("gh-1")
    assert caught.value.retryable and caught.value.retry_after == 60.0

    bead = await tracker.create(request())  # failures were consumed; nothing was half-created
    assert bead.id == "gh-1"


async def test_client_errors_are_not_retryable_and_carry_githubs_message(
    gh: FakeGitHub, tracker: GitHubIssuesTracker
) -> None:
    with pytest.raises(TrackerError) as caught:
        await tracker.create(request(title=""))
    err = caught.value
    assert not err.retryable
    assert "422" in err.message and "Validation Failed" in err.message and "title" in err.message

    with pytest.raises(TrackerError) as caught:
        await tracker.show("gh-99")
    assert not caught.value.retryable and "Not Found" in caught.value.message

    with pytest.raises(TrackerError) as caught:
        await tracker.show("ci-abc")
    assert not caught.value.retryable

    async with GitHubIssuesTracker(gh.url, "wrong-token", REPO) as bad:
        with pytest.raises(TrackerError) as caught:
            await bad.show("gh-1")
    assert not caught.value.retryable and "Bad credentials" in caught.value.message
    assert "wrong-token" not in repr(caught.value) and TOKEN not in repr(bad)


async def test_connection_errors_are_retryable() -> None:
    async with GitHubIssuesTracker(f"http://127.0.0.1:{closed_port()}", TOKEN, REPO) as tracker:
        with pytest.raises(TrackerError) as caught:
            await tracker.create(request())
    assert caught.value.retryable
    assert TOKEN not in caught.value.message


def test_fake_server_can_grow_new_routes(gh: FakeGitHub) -> None:
    """The artifact endpoints will be added like this: a template route plus a redirect."""
    from tests.fakes.github_api import Response

    @gh.route("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}")
    def download(req: object) -> Response:
        return Response(302, headers={"Location": f"{gh.url}/blob/artifact.zip"})

    @gh.route("GET", "/blob/artifact.zip", auth=False)
    def blob(req: object) -> Response:
        return Response(200, body=b"PK\x05\x06" + b"\0" * 18, content_type="application/zip")

    headers = {"Authorization": f"Bearer {TOKEN}"}
    first = httpx.get(f"{gh.url}/repos/{REPO}/actions/artifacts/5/zip", headers=headers)
    assert first.status_code == 302
    assert httpx.get(first.headers["location"]).content.startswith(b"PK")
    assert httpx.get(f"{gh.url}/repos/{REPO}/actions/artifacts/5/zip").status_code == 401
