from slackbot.config.loader import ConfigProblem, RunbookError, check_runbook, load_runbook
from slackbot.config.models import FailureClass, Runbook, Severity

__all__ = [
    "ConfigProblem",
    "FailureClass",
    "Runbook",
    "RunbookError",
    "Severity",
    "check_runbook",
    "load_runbook",
]
