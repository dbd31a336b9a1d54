"""Model declarations: one small module per segmenter family, each defining ``FAMILY`` (a
:class:`models.registry.ModelFamily`). Every module here is discovered by :mod:`models.registry`; keep them free
of heavy imports (torch, the model code): the builder imports the model when it runs."""
