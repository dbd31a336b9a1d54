"""Model implementations used by the pipeline (re-implemented, checkpoint-compatible)."""
