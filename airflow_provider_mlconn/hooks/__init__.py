"""Hooks: one per remote system (a connection plus a client)."""
