"""Work after an ack: it yields to arriving Slack requests, runs in order, and is not dropped.

Real asyncio with short intervals (20 ms quiet, a fraction of a second's bound), so each test
takes well under a second.
"""

from __future__ import annotations

import asyncio
import time

from slackbot.after_ack import AckFirst, AfterAck


async def keep_arriving(gate: AckFirst, seconds: float, every: float = 0.005) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        gate.arrived()
        await asyncio.sleep(every)


def test_a_change_waits_while_requests_arrive_and_runs_once_they_pause() -> None:
    async def scenario() -> tuple[float, float]:
        after_ack = AfterAck(AckFirst(quiet=0.02, max_delay=5.0))
        applied = asyncio.Event()
        start = time.monotonic()

        async def change() -> None:
            applied.set()

        after_ack.gate.arrived()
        after_ack.submit(change)
        await keep_arriving(after_ack.gate, 0.25)
        burst_over = time.monotonic() - start
        assert not applied.is_set()  # nothing ran while the acks kept coming
        await asyncio.wait_for(applied.wait(), timeout=1)
        return burst_over, time.monotonic() - start

    burst_over, applied_at = asyncio.run(scenario())
    assert applied_at - burst_over < 0.2  # right after the pause, not after max_delay


def test_a_change_runs_after_max_delay_even_if_requests_never_pause() -> None:
    async def scenario() -> float:
        after_ack = AfterAck(AckFirst(quiet=0.02, max_delay=0.15))
        applied: list[float] = []
        start = time.monotonic()

        async def change() -> None:
            applied.append(time.monotonic() - start)

        after_ack.gate.arrived()
        after_ack.submit(change)
        await keep_arriving(after_ack.gate, 0.5)
        assert applied
        return applied[0]

    waited = asyncio.run(scenario())
    assert 0.15 <= waited < 0.4


def test_without_requests_a_change_runs_at_once() -> None:
    async def scenario() -> float:
        after_ack = AfterAck(AckFirst(quiet=0.02, max_delay=5.0))
        start = time.monotonic()
        result = await after_ack.run(asyncio.sleep, 0, "changed")
        assert result == "changed"
        return time.monotonic() - start

    assert asyncio.run(scenario()) < 0.1


def test_changes_apply_in_arrival_order_whether_queued_or_awaited_and_errors_reach_the_awaiter() -> None:
    async def scenario() -> list[str]:
        after_ack = AfterAck(AckFirst(quiet=0.02, max_delay=5.0))
        order: list[str] = []

        async def change(name: str) -> str:
            order.append(name)
            return name

        async def refused() -> None:
            raise ValueError("INC-9 is resolved")

        after_ack.gate.arrived()
        after_ack.submit(change, "click 1")
        command = asyncio.ensure_future(after_ack.run(change, "command"))
        await asyncio.sleep(0)  # the command's listener runs up to its await: it is queued now
        failing = asyncio.ensure_future(after_ack.run(refused))
        await asyncio.sleep(0)
        after_ack.submit(change, "click 2")
        assert await command == "command"
        try:
            await failing
        except ValueError as exc:
            assert "resolved" in str(exc)
        else:
            raise AssertionError("the refusal did not reach the command")
        await after_ack.run(change, "last")
        return order

    assert asyncio.run(scenario()) == ["click 1", "command", "click 2", "last"]


def test_stopping_applies_waiting_changes_and_answers_at_once() -> None:
    async def scenario() -> tuple[list[str], float]:
        after_ack = AfterAck(AckFirst(quiet=0.02, max_delay=60.0))
        done: list[str] = []

        async def change() -> None:
            done.append("change")

        async def answer() -> None:
            done.append("answer")

        arrivals = asyncio.ensure_future(keep_arriving(after_ack.gate, 5.0))
        await asyncio.sleep(0.05)
        after_ack.submit(change)
        after_ack.spawn(answer())
        await asyncio.sleep(0.05)
        assert done == []  # still waiting for a pause that does not come
        start = time.monotonic()
        await after_ack.close(timeout=5)
        arrivals.cancel()
        return sorted(done), time.monotonic() - start

    done, took = asyncio.run(scenario())
    assert done == ["answer", "change"] and took < 1
