"""Auth: users, groups and roles, sign-in, and the access checks every part uses."""
