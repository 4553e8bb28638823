"""test_crash_matrix (issue 6): placeholder, being written."""
