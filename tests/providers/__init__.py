"""Each provider adapter end to end against its fake."""
