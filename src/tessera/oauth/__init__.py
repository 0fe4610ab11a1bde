"""The OAuth 2.0 / OpenID Connect authorization server: clients, grants, codes (SPEC section 4)."""
