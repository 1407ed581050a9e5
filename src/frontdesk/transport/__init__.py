"""Event log and per-channel queues: embedded (in the store) or Kafka."""
