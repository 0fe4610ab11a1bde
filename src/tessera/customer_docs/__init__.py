"""Pages a deployment publishes for its own customers, built from its live configuration."""
