"""One module per `masseg` sub-command; `pipeline.cli` registers them."""
