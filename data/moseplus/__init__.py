"""MOSE+: MOSE train plus the difficult clips of other VOS datasets, assembled in MOSE's layout."""
from .assemble import assemble  # noqa: F401
from .config import load_config  # noqa: F401
