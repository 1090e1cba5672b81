"""Strategy adapters shipped with the library, loaded by reference string like any plugin."""
