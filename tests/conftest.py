"""Shared test configuration.

Hypothesis runs derandomized with a fixed profile ("ci", the default) so CI is never flaky;
`HYPOTHESIS_PROFILE=large pytest` runs the bigger search by hand.
"""
import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.support.etcd"]

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "large",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


ETCD_FIXTURES = {"etcd_devnet", "fresh_devnet", "tls_etcd"}


def pytest_collection_modifyitems(config, items):
    """Tests on real etcd members are end-to-end suites: slow (the fast loop skips them)."""
    import pytest

    for item in items:
        if ETCD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
