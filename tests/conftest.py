"""Shared test configuration.

Deliberately (almost) empty: because ``tests`` is a package, pytest puts the project root
on ``sys.path`` when it imports this file, which is what makes ``from tests.fakes...``
work under the plain ``pytest`` entry point.
"""
