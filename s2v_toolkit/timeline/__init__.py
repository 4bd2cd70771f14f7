"""timeline stage (see DESIGN.md). Public API is exported here."""
# WORKERS: read /work/main/AGENTS.md first (shared-tree rules, media API, deadline 02:05 UTC).
