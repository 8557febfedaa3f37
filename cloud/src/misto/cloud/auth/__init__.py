"""Authentication and roles: people (OAuth2 password flow, JWT), machines (API keys) and the
bootstrap operator token."""
