"""Audit: the append-only trail of every change, who made it, from where, before and after."""
