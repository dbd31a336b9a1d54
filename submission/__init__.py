"""Official-format challenge submissions: label-map writer, validator and deterministic zip packaging.

Modules (imported on use, so `submission.jf` and the CLI stay light):
``submission.expected`` (what a split expects), ``submission.writer`` (palette PNGs, atomic, resumable),
``submission.validate`` (every problem of a folder or zip at once), ``submission.package`` (byte-identical zips),
``submission.build`` (label folder -> validated zip).
"""
