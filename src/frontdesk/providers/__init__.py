"""One module per provider, each behind core.ports.Provider."""
