"""What test modules share, in one place: no test module imports from another.

Each module here serves the tests of one domain or one kind of check (`consents`, `notices`,
`messages`, `tokens`, `problems`, ...). The fixtures all tests use are in tests/conftest.py.
`clock` is the suite's one clock, and `travel/` moves the clock of the processes a test starts.
"""
