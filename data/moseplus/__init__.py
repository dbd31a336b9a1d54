"""MOSE+: MOSE train plus the difficult clips of other VOS datasets, assembled in MOSE's layout
(:mod:`.assemble`), from sources read in their own formats (:mod:`.sources`), measured by :mod:`.stats`."""
