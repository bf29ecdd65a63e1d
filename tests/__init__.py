"""sparring's tests; a package only so that ``tests.fakes`` is importable from any test."""
