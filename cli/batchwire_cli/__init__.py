"""The ``batchwire`` command: a batchwire stack's failure queues and schedules, from a terminal.

It lives outside the functions' CodeUri (``functions/``): nothing here ships to Lambda, and
nothing under ``functions/`` imports it.
"""

__version__ = "0.1.0"
