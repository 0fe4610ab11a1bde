"""What every edge of Tessera shares: the server's web layer and the integration in a
customer's application both answer errors through :mod:`tessera.edge.problems`.

Nothing here imports the server (SQLAlchemy, the deployment, the web application), so that an
application that only verifies keys does not load what runs Tessera.
"""
