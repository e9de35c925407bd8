"""Rules: safe expressions, the helper functions diagrams may call, DMN support."""
