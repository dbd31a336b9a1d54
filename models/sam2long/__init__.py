"""SAM2Long member: SAM2's model with SAM2Long's training-free memory tree (several pathways per object, cumulative
IoU scoring, pruning, final back-trace), writing the SAM2 member's store contract (see :mod:`.segmenter`)."""
from .segmenter import DEFAULTS, Sam2LongSegmenter, check_options, tree_arrays

__all__ = ["DEFAULTS", "Sam2LongSegmenter", "check_options", "tree_arrays"]
