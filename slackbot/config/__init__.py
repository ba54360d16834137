from slackbot.config.base import ChoiceError
from slackbot.config.loader import ConfigProblem, RunbookError, check_playbooks, load_playbooks
from slackbot.config.playbook import FailureContext, PageTarget, Playbook, Playbooks

__all__ = [
    "ChoiceError",
    "ConfigProblem",
    "FailureContext",
    "PageTarget",
    "Playbook",
    "Playbooks",
    "RunbookError",
    "check_playbooks",
    "load_playbooks",
]
