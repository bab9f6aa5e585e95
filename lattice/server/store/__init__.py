"""The durable store: accounts, API keys, personal runtimes and their bootstrap tokens.

SQLAlchemy 2 (async) over embedded SQLite by default, PostgreSQL by URL; the schema is
Alembic's (`migrations/`), upgraded when the store opens. Queries stay portable SQL.
"""

from lattice.server.store.database import Store, open_store

__all__ = ["Store", "open_store"]
