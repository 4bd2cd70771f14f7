"""pipelines stage (see DESIGN.md). Public API is exported here."""
