"""Model versions, aliases (champion, challenger, previous), signatures and the
manifest the registry publishes for serving to read."""
