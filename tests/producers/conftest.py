# The sample projects here are run by tests/ingest/test_junit_producers.py (a copy, in tmp_path),
# never collected by the suite itself: their failures are on purpose.
collect_ignore_glob = ["pytest-sample/*", "js/*"]
