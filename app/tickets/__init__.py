"""Tickets: the work order itself (工单), and the devices it can be about."""
