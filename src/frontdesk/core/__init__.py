"""The domain: models, rules, rendering and ports. No I/O, no adapter imports."""
