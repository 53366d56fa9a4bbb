"""The errors of RAG indexes: each carries a message meant for the user."""

from __future__ import annotations

from workbench.errors import WorkbenchError


class RagError(WorkbenchError):
    """A Chroma index cannot do what was asked."""


class IndexUnavailableError(RagError):
    """Not a Chroma store, corrupt, from an incompatible Chroma, or a server that is down."""


class IndexLockedError(IndexUnavailableError):
    """Another process is writing the store and did not finish in time."""


class IndexTimeoutError(RagError):
    """A call to chromadb did not return within its time limit."""


class DimensionMismatchError(RagError):
    """A query vector and a collection have different dimensions."""
