"""Core data types shared by every stage: datasets, label maps (palette PNGs) and the logit store.

This package sits at the bottom of the dependency graph (pipeline -> models/ensemble/submission -> data);
it must never import from the packages above it. Datasets themselves are stored under this folder too
(git-ignored, see README.md), which is why it doubles as the place the dataset layer lives.
"""
