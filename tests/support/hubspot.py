"""Shared pytest fixtures for the hubspot tests (registered in tests/conftest.py)."""

from __future__ import annotations
