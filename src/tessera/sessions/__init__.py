"""Browser sessions: a random cookie value, stored server-side as a digest."""
