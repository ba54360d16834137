"""The Prometheus rules and Grafana dashboard shipped in deploy/, checked with the real promtool
and against what a running bot exports, so a renamed metric cannot leave an alert silently dead."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import report, result
from tests.slack.conftest import Bot, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "triagebot-rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "triagebot-rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "triagebot-dashboard.json"
PROMTOOL = "/usr/bin/promtool"  # Debian's prometheus package; .ci/run installs it
# Words of PromQL that are not metric names (functions and aggregations are followed by "(").
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def promtool(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: what is left once strings, label matchers,
    ranges, grouping clauses, functions and keywords are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        if match.group(2) is None and match.group(1) not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def rule_expressions() -> list[str]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [v["definition"] for v in dashboard["templating"]["list"] if v.get("definition")]
    return found


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_name_extraction_reads_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (job, le) (rate(triagebot_timer_lateness_seconds_bucket{job=~"$job"}'
        "[$__rate_interval]))) > 30 and on (job) max(triagebot_timers_overdue_seconds offset 5m) > bool 0"
    )
    assert metric_names(expr) == {"triagebot_timer_lateness_seconds_bucket", "triagebot_timers_overdue_seconds"}
    assert metric_names("label_values(triagebot_metrics_database_up, job)") == {"triagebot_metrics_database_up", "job"}


def test_every_metric_the_rules_and_dashboard_read_is_one_the_bot_exports(bot: Bot) -> None:
    # exercise the bot so the labelled series exist: a card Slack refuses (a dead letter and an
    # auth failure), a report ingested, a refused one
    bot.emulator.fail_next("chat.postMessage", status=200, error="invalid_auth")
    bot.send(report(result("HLT-002", "NOTIF-002", test_file="tests/integration/health.test.ts")))
    assert httpx.post(f"{bot.url}/ingest/report", content=b"{}").status_code == 401
    text = ""

    def scraped() -> bool:
        nonlocal text
        text = httpx.get(f"{bot.url}/metrics", timeout=10).text
        return "triagebot_outbox_dead_lettered_total{" in text

    wait_for(scraped, what="the dead letter in /metrics")
    linted = promtool("check", "metrics", stdin=text)
    assert linted.returncode == 0 and linted.stdout.strip() == "", linted.stdout + linted.stderr

    families = list(text_string_to_metric_families(text))
    exported = {f.name + suffix for f in families for suffix in SUFFIXES.get(f.type, ("",))}
    exported |= {s.name for f in families for s in f.samples}
    for source, expressions in (("rules", rule_expressions()), ("dashboard", dashboard_expressions())):
        assert expressions
        for expr in expressions:
            names = metric_names(expr) - {"job"}  # label_values(metric, job): a label, not a metric
            assert names, expr
            assert names <= exported, (
                f"{source}: {expr} reads {sorted(names - exported)}, which the bot does not export"
            )
    # and between them they watch every family the bot exports (a new metric gets a panel or a
    # rule); prometheus_client's *_created timestamps come with every counter and histogram
    read = set().union(*(metric_names(e) for e in rule_expressions() + dashboard_expressions()))
    unwatched = {
        f.name for f in families if not f.name.endswith("_created") and not any(n.startswith(f.name) for n in read)
    }
    assert unwatched == set(), unwatched
