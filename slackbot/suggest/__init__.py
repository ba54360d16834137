"""A suggested class with its reasons and a confidence.

Each signal is a stated reason that votes for a class: the playbook's per-class message and log
patterns (``patterns``), the test's history, the run's shape and where the test lives
(``signals``), and how the team classified similar failures before (``past``). ``suggestion``
adds the votes up explainably: every suggestion says which signals voted, and how sure it is.
"""
