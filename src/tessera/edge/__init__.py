"""What every edge of Tessera shares: the server's web layer and the integration in a
customer's application read a request the same way (``facts.py``, ``clientip.py``) and answer
errors through the one error map (``problems.py``).

Nothing here imports the server (SQLAlchemy, the deployment, the web application), so that an
application that only verifies keys does not load what runs Tessera.
"""
