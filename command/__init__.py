"""The command service: risk, incidents, dispatch, linkage, store, API, runtime, CLI."""
