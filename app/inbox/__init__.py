"""Inbox: the human tasks a person may work on, and completing them."""
