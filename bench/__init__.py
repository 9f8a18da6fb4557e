"""Benchmarks of the batchwire handlers against the naive handlers teams write by hand.

``python -m bench`` (or ``make bench``) prints the table; ``--check`` exits 1 on a miss.
"""
