from tests.outbox.rig import any_rig, rig  # noqa: F401  (the virtual-clock rigs)
from tests.slack.conftest import bot  # noqa: F401  (the running bot, shared with the Slack tests)
