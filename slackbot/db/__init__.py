"""Storage: the tables (SQLModel), the engine and sessions, and the Alembic migrations."""
