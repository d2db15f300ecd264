"""Platforms: where grades come from and go to.

``bundle`` builds the Gradescope autograder zip; ``images`` turns it into a local grading
image and ``containers`` grades one submission in a container of it, as Gradescope would;
``exports`` writes scores.csv and Canvas' gradebook CSV, and ``canvas`` uploads grades.
"""
