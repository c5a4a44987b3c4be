"""Alembic migrations of the store; see README.md in this directory for how to add one."""
