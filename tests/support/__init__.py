"""Test harness: real frontdesk instances on real databases, and a client for the public API."""
