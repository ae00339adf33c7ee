"""The exchange's keys and the one wrapper around JOSE: signing keys, recipients' encryption keys,
JWKs from outside, and sealing data at rest. No database.
"""
