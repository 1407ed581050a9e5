"""frontdesk: a self-hosted, multi-channel notification service."""

__version__ = "0.1.0"
