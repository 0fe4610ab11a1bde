"""A minimal Django + DRF + djangorestframework-api-key project: the peer of the benchmark.

Set up the way that package's documentation says, with what the endpoint does not need left
out (sessions, admin, templates, every middleware): the peer at its fastest.
"""

import os

BASE_DIR = os.environ["PEER_DATA"]
SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework_api_key",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "drf.urls"
WSGI_APPLICATION = "drf.wsgi.application"
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{BASE_DIR}/peer.sqlite3"}
}
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework_api_key.permissions.HasAPIKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
