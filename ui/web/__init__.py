"""The Chainlit chat's server-side pieces: settings, login, persistence, file routes, evidence."""
