"""The inbox: what a Slack interaction asks for is a row before Slack gets its ack.

A click, a select, a ``/triage`` change or a modal submission is turned into the few values its
change needs (the incident, who, which change) and written as an ``inbox`` row; only when that row
is committed does the listener ack. Slack does not resend an interaction it got a 200 for, so an
ack is a promise, and the row keeps it across a crash (``kill -9``) or a replica going away.

- **Recorded fast.** Rows are written by one thread, in group commits: requests that arrive while
  one transaction commits all go into the next one, so a burst of acks shares a few short
  transactions and a lone click pays one insert (on SQLite in WAL mode, ``synchronous=NORMAL``:
  a commit survives the process being killed; only an OS crash or power loss can take the last
  ones). ``bench/ack_latency.py`` measures what it costs against bare Bolt.
- **Exactly once.** ``request_key`` (Slack's ``trigger_id`` with the action's id and time, or a
  digest of the request) is unique: a redelivered request is acked again and recorded once. A row
  is marked done in the same transaction as the change it asks for, so it is applied and marked,
  or neither.
- **In arrival order per incident.** The arrival sequence is the row id; an incident's rows are
  applied in id order, in one transaction per incident that holds the incident's lock. On
  PostgreSQL that lock is taken with ``FOR UPDATE SKIP LOCKED``: replicas apply different
  incidents side by side and never the same incident's rows out of order; on SQLite the
  transaction is the single writer.
- **By any replica, after any restart.** Each process applies whatever is pending, its own rows at
  once (after the acks, see ``slackbot.after_ack``) and the others' when it next looks (every
  ``poll`` seconds): what a killed process recorded is applied by the next one to start.
- **Answers.** A refused or no-op click is answered ephemerally at its response URL; a command or
  a modal waits for its own outcome and answers with it. Answers are not durable (a crash loses
  an ephemeral reply, never a change).
"""

from slackbot.inbox.inbox import Applied, Inbox, Request

__all__ = ["Applied", "Inbox", "Request"]
