"""`make bench`: the measuring instrument of issue 8 (speed, linearity, memory, cost), apart from the tests."""
