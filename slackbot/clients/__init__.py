"""Clients of the outside world: the defect trackers (bd, GitHub Issues), the GitHub Actions API,
and Slack's user groups (who may act). No rules live here, only the conversation with each."""
