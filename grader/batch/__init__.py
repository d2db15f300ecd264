"""Batch: regrade a whole class, N submissions at a time, resumable, on one machine or a cluster.

``discovery`` finds the submissions, ``keys`` says which stored results still stand,
``runners`` grade one submission (a container or a sandbox process), ``local`` and
``cluster`` run those grades (here, or on Dask workers), ``progress`` shows them, ``run``
puts it together (``run_batch``) and ``commands`` is its command line.
"""

from grader.batch.discovery import BatchItem, discover, parse_gradescope_metadata
from grader.batch.keys import FORCED, NEW, key_parts, regrade_reason, result_key
from grader.batch.progress import ProgressLine
from grader.batch.run import BatchSummary, run_batch

__all__ = [
    "FORCED",
    "NEW",
    "BatchItem",
    "BatchSummary",
    "ProgressLine",
    "discover",
    "key_parts",
    "parse_gradescope_metadata",
    "regrade_reason",
    "result_key",
    "run_batch",
]
