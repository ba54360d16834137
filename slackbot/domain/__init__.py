"""The typed vocabulary every layer shares: states, effect kinds and keys, changes, checklists.

Nothing here reads a database or talks to anything; it only names things, once.
"""
