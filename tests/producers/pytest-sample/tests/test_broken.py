"""A module whose import fails: pytest collects none of its tests."""

raise RuntimeError("cannot load fixtures/orders.json")


def test_never_collected() -> None:
    assert True
