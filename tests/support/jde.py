"""Shared pytest fixtures for the jde tests (registered in tests/conftest.py)."""

from __future__ import annotations
