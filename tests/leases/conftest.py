from tests.slack.conftest import bot  # noqa: F401  (the running bot, shared with the Slack tests)
