"""Notifications: in-app messages, email over SMTP, and an outbox for other channels."""
