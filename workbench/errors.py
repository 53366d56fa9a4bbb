"""The error types the engine raises for things a user can fix.

Anything derived from :class:`WorkbenchError` carries a message meant for the
user: the CLI prints it to stderr and the app shows it where the user looks.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every error with a message meant for the user."""


class NotFoundError(WorkbenchError):
    """An unknown prompt, version, label or dataset."""


class ValidationError(WorkbenchError):
    """Input the user wrote (a prompt file, a dataset, a reference) is invalid."""


class ConflictError(WorkbenchError):
    """The request clashes with what the store already holds."""


class StoreError(WorkbenchError):
    """The database cannot be used: locked, unwritable, unreachable or corrupt."""


class StoreConflictError(StoreError):
    """The database refused a write that clashed with another (a unique key, a trigger)."""
