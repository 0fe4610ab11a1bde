"""Organizations, workspaces, users and memberships."""
