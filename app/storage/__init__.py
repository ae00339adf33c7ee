"""The database: engines and sessions (and telling an outage from an error), the ORM tables, and
the migrations' driver. Typed columns, no behaviour.
"""
