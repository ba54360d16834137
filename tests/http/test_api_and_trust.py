"""``GET /api/incidents``: pages newest first, and who may read it (README "Trust boundaries")."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.factories import report, result
from tests.http.conftest import API_TOKEN, Server, running


def open_incidents(server: Server, count: int) -> list[str]:
    results = [result(f"BID-{n:03d}", "TENANT-001", test_name=f"case {n}") for n in range(1, count + 1)]
    response = server.report(report(*results))
    assert response.status_code == 202, response.text
    return [i["id"] for i in response.json()["incidents"]]


def test_walking_every_page_lists_each_incident_once_newest_first(server: Server) -> None:
    opened = open_incidents(server, 7)
    seen: list[str] = []
    url: str | None = server.url + "/api/incidents?limit=3&status=open"
    pages = 0
    while url:
        response = httpx.get(url)
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["count"] == len(data["incidents"]) <= 3
        seen += [i["id"] for i in data["incidents"]]
        link = response.headers.get("link")
        assert (link is None) == (data["next"] is None)
        url = server.url + link.split(">")[0].lstrip("<") if link else None
        pages += 1
    assert pages == 3
    assert seen == sorted(opened, key=lambda key: int(key.split("-")[1]), reverse=True)


def test_the_default_page_is_capped_and_says_where_the_rest_is(server: Server) -> None:
    open_incidents(server, 3)
    data = httpx.get(server.url + "/api/incidents", params={"limit": 2}).json()
    assert [i["id"] for i in data["incidents"]] == ["INC-3", "INC-2"] and data["next"]
    rest = httpx.get(server.url + "/api/incidents", params={"limit": 2, "cursor": data["next"]}).json()
    assert [i["id"] for i in rest["incidents"]] == ["INC-1"] and rest["next"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"limit": "0"}, "limit must be a whole number from 1 to 500"),
        ({"limit": "501"}, "limit must be"),
        ({"limit": "²"}, "limit must be"),
        ({"limit": "9" * 5000}, "limit must be"),
        ({"cursor": "not-a-cursor"}, "cursor is not one this server gave out"),
        ({"cursor": "é"}, "cursor is not one"),
        ({"status": "sleeping"}, "status must be one of open, resolved"),
    ],
)
def test_bad_paging_parameters_are_a_400_naming_them(
    shared_server: Server, params: dict[str, str], expected: str
) -> None:
    response = httpx.get(shared_server.url + "/api/incidents", params=params)
    assert response.status_code == 400
    assert expected in response.json()["error"]


# -- trust ---------------------------------------------------------------------------------------


def test_without_a_token_only_loopback_reads_and_a_forwarded_client_is_not_loopback(shared_server: Server) -> None:
    assert httpx.get(shared_server.url + "/api/incidents").status_code == 200
    # A proxy on this host that says who the client is: that client decides, and it is remote.
    forwarded = httpx.get(shared_server.url + "/api/incidents", headers={"X-Forwarded-For": "203.0.113.9"})
    assert forwarded.status_code == 401
    assert "TRIAGE_API_TOKEN" in forwarded.json()["error"]
    # Other headers decide nothing.
    other = httpx.get(
        shared_server.url + "/api/incidents", headers={"Forwarded": "for=203.0.113.9", "X-Real-IP": "1.2.3.4"}
    )
    assert other.status_code == 200


@pytest.fixture
def guarded(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Server:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with running(db_url, tmp_path, TRIAGE_API_TOKEN=API_TOKEN) as started:
        yield started  # type: ignore[misc]


def test_with_a_token_set_even_loopback_callers_need_the_bearer_token(guarded: Server) -> None:
    # A TLS proxy on the same host that sets no X-Forwarded-For makes every client look local:
    # with a token configured, looking local opens nothing.
    url = guarded.url + "/api/incidents"
    missing = httpx.get(url)
    assert missing.status_code == 401 and "Authorization: Bearer <token>" in missing.json()["error"]
    bare = httpx.get(url, headers={"Authorization": API_TOKEN})
    assert bare.status_code == 401 and "Bearer scheme" in bare.json()["error"]
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong bearer token" in wrong.json()["error"]
    odd = httpx.get(url, headers={"Authorization": "Bearer é€".encode()})
    assert odd.status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 200
    assert httpx.get(url, headers={"Authorization": f"bearer {API_TOKEN}"}).status_code == 200
