"""The fault suite's shared fixtures: a finished matrix, built once, and a fresh copy of it per test."""

from tests.faults.faultkit import copy_finished, finished  # noqa: F401 - fixtures, found by pytest here
