"""The suite: a folder per package of app/, `flows/` for what spans them, `bench/` for the
benchmark's harness, `helpers/` for what test modules share."""

import pytest

# Helpers assert too: their failures are explained as a test's own are.
pytest.register_assert_rewrite("tests.helpers")
