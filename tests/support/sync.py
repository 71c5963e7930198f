"""Shared pytest fixtures for the sync tests (registered in tests/conftest.py)."""

from __future__ import annotations
