"""Helpers shared by the test suites: node subprocesses, clients, free ports."""
