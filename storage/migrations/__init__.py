"""Alembic migrations of the store, applied automatically when a store is opened."""

from __future__ import annotations

# The newest revision. Opening a store compares the database's revision with this and
# imports Alembic only when they differ (a test checks it matches the scripts' head).
HEAD_REVISION = "0009_sync"
