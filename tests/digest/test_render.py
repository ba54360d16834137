"""What the digest's text does with untrusted names: CI output and playbook labels never ping anyone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slackbot.slack.digest import ClassLine, DigestView, FlakyTest, OwnerLoad, digest_blocks, digest_text


def test_test_names_labels_and_handles_are_escaped() -> None:
    line = ClassLine("<!here> label", 1, 1, 1, 60.0, 60.0, 1, 0, None, 0)
    view = DigestView(
        channel="C0NIGHTLY",
        since=datetime(2027, 1, 4, 8, 0, tzinfo=UTC),
        until=datetime(2027, 1, 11, 8, 0, tzinfo=UTC),
        zone="Europe/Berlin",
        new=1,
        recurring=0,
        classify_within=timedelta(minutes=20),
        total=line,
        classes=[line],
        flaky=[FlakyTest("<!channel> `x` <@U0CAROL>", "acme/dispatch", "<main>", 5, 2, 3, "failed <b>")],
        owners=[OwnerLoad("<!subteam^S0X>", 2)],
    )
    text = digest_text(view)
    assert "<!channel>" not in text and "<!here>" not in text and "<@U0CAROL>" not in text and "<!subteam" not in text
    assert "&lt;!channel&gt; 'x' &lt;@U0CAROL&gt;" in text and "&lt;!subteam^S0X&gt;: 2 open" in text
    assert "flake rate 75% (3 flips in 5 runs on &lt;main&gt;), fails 40% (2/5); failed &lt;b&gt;" in text
    assert "<#C0NIGHTLY>" in text  # the one reference the bot builds itself, from a configured id
    assert [b["block_id"] for b in digest_blocks(view) if b["type"] == "section"] == [
        "digest_head",
        "digest_classes",
        "digest_flaky",
        "digest_owners",
    ]
