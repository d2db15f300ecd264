"""Course: what the instructor ships, read and turned into what others receive.

``assignment`` reads assignment.toml (tasks, points, files, budgets: the one place for each),
``skeleton`` handles solution regions and grader-only blocks, ``secret`` keeps the course
secret that seeds each grade, and ``handout`` (with ``handout_root``) generates the student
repository, whose one test plugin is ``student_plugin``. Nothing here runs student code.
"""
