"""Thin templated operators over the hooks and the sync engine."""
