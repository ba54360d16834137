"""Test history: the outcome of every test in every run the bot sees, per repository and branch.

``outcomes`` packs one report's results into bytes, ``store`` keeps and reads them (one row per
report), ``summary`` derives what a responder asks: when it started failing, the last green run
and its sha, the fail rate, how often it flipped, and whether it failed and passed on one sha.
"""
