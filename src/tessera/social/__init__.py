"""Sign-in with Google, GitHub or any OpenID Connect provider (SPEC section 3): Tessera as a
relying party. The core: records, the store Protocol, the provider port and the service that
links a provider's account to a person."""
