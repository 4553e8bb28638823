"""test_fault_soak (issue 6): placeholder, being written."""
