"""User tokens: RS256/ES256 access tokens (RFC 9068) and rotating refresh tokens."""
