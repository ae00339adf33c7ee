"""The NPS exchange. One package per domain; docs/architecture.md is the map.

Entry points (cli, contract, main, api, worker) sit on top; under them the domains, each above
the ones it uses: notices, consent, messages, disclosure, access, audit; then keys, storage and
the wire formats. `[tool.importlinter]` in pyproject.toml holds every package to that order.
"""
