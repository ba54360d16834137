"""The suggestion on the labelled corpus meets the issue's targets (deterministic: no timing)."""

from __future__ import annotations

from bench.suggest import evaluate, load_corpus


def test_the_corpus_is_classified_at_least_80_percent_right_and_95_percent_when_confident() -> None:
    corpus = load_corpus()
    assert len(corpus) >= 200
    frameworks = {item["framework"] for item in corpus}
    assert {"pytest", "vitest", "jest", "go", "dotnet"} <= frameworks
    cold = evaluate(corpus)
    assert cold.accuracy >= 0.80, cold.misses
    assert cold.confident >= 40 and cold.confident_accuracy >= 0.95, cold.misses
    learning = evaluate(corpus, learn=True)
    assert learning.accuracy >= 0.80 and learning.confident_accuracy >= 0.95
