"""Cordon's built-in playbooks (YAML package data, read through `importlib.resources`)."""
