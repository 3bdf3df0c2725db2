"""aistack: roll a self-hosted LLM inference stack out to a small mixed GPU cluster."""
