"""The benchmark harness (issue 8): measured here, never asserted in the test suite."""
