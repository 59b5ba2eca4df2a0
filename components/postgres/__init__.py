"""shared-postgres: the server, each app's role and databases, and the nightly backups."""
