"""minitorch-grader: a tamper-resistant autograder for the MiniTorch autodiff course."""

__version__ = "0.1.0"
