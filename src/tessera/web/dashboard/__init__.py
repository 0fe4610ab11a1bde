"""The dashboard: server-rendered pages (Jinja2) for people managing their organization."""
