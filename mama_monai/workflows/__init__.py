"""Workflows: compose networks, data and engines into train / evaluate / cv / score / demo."""
