"""Service levels: business calendars, SLA policies and the SLA clock of each work order."""
