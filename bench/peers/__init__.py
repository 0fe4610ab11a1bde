"""The peer: a Django + DRF + djangorestframework-api-key protected endpoint (``drf/``)."""
