"""The roles, in the order a notification travels: ingest, orchestrator, worker."""
