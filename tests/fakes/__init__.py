"""Local fake servers of the providers, written from their public API references."""
