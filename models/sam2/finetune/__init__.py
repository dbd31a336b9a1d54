"""Fine-tuning SAM 2 the MASSeg way on top of the official `training` package."""
