"""A pytest project whose failures are on purpose: the JUnit file it writes is what the bot reads."""

from collections.abc import Iterator

import pytest


@pytest.fixture
def database() -> Iterator[str]:
    raise ConnectionError("database refused the connection")
    yield "unreachable"


@pytest.fixture
def scratch_dir() -> Iterator[str]:
    yield "/tmp/scratch"
    raise RuntimeError("scratch dir still busy")


class TestCheckout:
    def test_total(self) -> None:
        assert 1 + 2 == 4

    def test_BID_001_TENANT_001_no_cross_org(self, scratch_dir: str) -> None:
        assert scratch_dir.startswith("/tmp")


class TestRefund:
    def test_total(self) -> None:
        assert {"refunded": 3} == {"refunded": 2}


@pytest.mark.parametrize(("currency", "total"), [("EUR", 10), ("USD", 11), ("GBP", 12)])
def test_total_in(currency: str, total: int) -> None:
    assert total == 10


def test_orders_listed(database: str) -> None:
    assert database


def test_refunds_listed(database: str) -> None:
    assert database


def test_BID_002_TENANT_002_receipt(scratch_dir: str) -> None:
    assert scratch_dir == "/var/receipts"
