"""The `exchange` command line: serve, run a worker, migrate, administer organisations and keys,
purge, explain the policy, and the auditors' commands (`exchange audit ...`).
"""
