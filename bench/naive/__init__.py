"""The naive handlers teams write by hand: the baselines every figure is compared with.

Each is deliberately plain (no validation, no idempotency, no tracing), written the way the
common public examples are, and handles the same sample events as its batchwire handler.
"""
