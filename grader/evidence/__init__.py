"""Evidence: what shows the suite judges well.

``mutations`` makes submissions from the reference by edits (the bug corpus, the demo's
examples), ``demo`` grades the example submissions into the table of ``make demo``, and
``audit`` is mutation testing of the suite (``grader audit``).
"""
