"""Workflows: the REST resources for process definitions and process instances."""
