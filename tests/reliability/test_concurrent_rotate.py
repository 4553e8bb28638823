"""test_concurrent_rotate (issue 6): placeholder, being written."""
