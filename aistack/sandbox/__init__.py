"""Local sandbox: test-host images, tiny models and helpers for the integration suite."""
