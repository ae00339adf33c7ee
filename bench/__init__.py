"""The benchmark harness (issue 8): run as `python -m bench`."""
