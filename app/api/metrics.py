"""Prometheus metrics, on a registry each app makes for itself (never a global at import time).
Labels carry codes only: no client ids, no personal data."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    client_auth_failures: Counter
    client_auth_throttled: Counter


def make_metrics() -> Metrics:
    registry = CollectorRegistry()
    return Metrics(
        registry=registry,
        client_auth_failures=Counter(
            "exchange_client_auth_failures",
            "Failed client authentications at the token endpoint, by reason.",
            ["reason"],
            registry=registry,
        ),
        client_auth_throttled=Counter(
            "exchange_client_auth_throttled",
            "Token requests refused because of repeated failures from the same source.",
            registry=registry,
        ),
    )
