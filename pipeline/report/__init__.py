"""Looking at a run's results: each member's own labels and scores next to the fusion's (``scores``), and the
self-contained HTML report (``html``) behind ``masseg report`` and the end of ``masseg run``."""
