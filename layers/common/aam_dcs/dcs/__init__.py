"""DCS transport: regions, query building, the HTTP session, retries and response parsing."""
