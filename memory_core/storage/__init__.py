"""Storage backends: one contract (base.Backend), chosen by URL (factory.backend_from_url)."""
