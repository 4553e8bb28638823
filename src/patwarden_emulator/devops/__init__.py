"""devops."""
