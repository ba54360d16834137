"""Markdown documents rendered from data: each playbook's published runbook, the incident record
(defect bead body) and the postmortem. Pure renderings: the data is gathered elsewhere."""
