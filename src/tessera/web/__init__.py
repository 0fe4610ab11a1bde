"""The HTTP edge: FastAPI routes, the error mapping, and the dashboard."""
