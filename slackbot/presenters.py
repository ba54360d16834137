"""Plain-text renderings for terminals (the CLI and the demo)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def incident_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "no incidents"
    header = ("ID", "STATUS", "CLASS", "SEV", "SCENARIO / INVARIANT", "SEEN", "FLAGS", "SYMPTOM")
    lines = [header]
    for row in rows:
        flags = ",".join(
            flag
            for flag, on in (
                ("contract", row["contractViolation"]),
                ("doc-gap", bool(row["documentationGap"])),
                ("multi-prefix", row["multiPrefix"]),
            )
            if on
        )
        ids = f"{row['scenarioId'] or '—'} / {row['invariantId'] or '—'}"
        symptom = row["symptom"] if len(row["symptom"]) <= 50 else row["symptom"][:49] + "…"
        lines.append(
            (
                row["id"],
                row["status"],
                row["class"] or "unclassified",
                row["severity"],
                ids,
                str(row["occurrences"]),
                flags or "-",
                symptom,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])) + "  " + line[-1] for line in lines
    )
