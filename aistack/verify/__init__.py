"""Live verification: the running cluster against the model (expectations -> tests/live -> report)."""
