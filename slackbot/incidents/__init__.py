"""The incident core: every transition of an incident and the effects it emits.

``core.IncidentCore.apply`` carries out what people and integrations ask (classify, severity,
milestones, resolve, …); ``opening`` is how a failure opens, recurs or reopens an incident;
``timers`` fires the timed escalation rule and the reminders; ``beads`` follows the defect.
All of them write outbox rows (``effects``) in the caller's transaction and end in
``state.changed``.
"""
