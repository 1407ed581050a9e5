"""Persistence: SQLAlchemy tables and the SQL store for SQLite and PostgreSQL, with migrations."""
