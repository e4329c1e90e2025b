"""Routers of the staff: their commands, anywhere, and the staff group itself."""
