"""Grading: one submission, from its files to a scored results.json.

``submission`` locates the editable files (folder or zip) and stages them over the course's
copies; ``plugin`` is the pytest plugin that runs the tests against a worker (``student``
fixture, ``task`` marker, messages), with ``shrinking`` bounding hypothesis; ``scoring`` is
a pure function from the test outcomes and assignment.toml to points; ``results`` is the one
place for results.json's shape; ``runner`` puts one grade together.
"""
