"""keyvault."""
