"""The sync flows, one module each; importing a module registers its ``Flow`` (see sync.registry)."""
