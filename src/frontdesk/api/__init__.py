"""The HTTP API (FastAPI): ingest, admin, inbox, operations."""
