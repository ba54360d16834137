"""The local PagerDuty Events API v2 fake; it lives in the product for ``triagebot simulate``."""

from slackbot.simulation.pagerduty import FakePagerDuty, running_pagerduty

__all__ = ["FakePagerDuty", "running_pagerduty"]
