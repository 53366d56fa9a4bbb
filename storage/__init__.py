"""The prompt store: SQLModel tables, migrations and repository functions.

Open it with :func:`workbench.storage.db.open_store`; query it with the functions in
:mod:`workbench.storage.repo`; whole histories go in and out through
:mod:`workbench.storage.transfer`.
"""
