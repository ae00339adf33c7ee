"""The benchmark harness (issue 8), run as `python -m bench`: measured here, never asserted in the
test suite."""
