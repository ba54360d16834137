"""Where failures come from: reports (JSON and JUnit), GitHub Actions runs, Alertmanager alerts
and Slack messages. Each parses and validates its input, picks the failure's playbook and hands
it to the incident core (``slackbot.incidents.opening``)."""
