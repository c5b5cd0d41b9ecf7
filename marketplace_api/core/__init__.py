"""Settings and database plumbing of the marketplace API."""
