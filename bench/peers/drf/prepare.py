"""Migrates the peer's database and prints a new API key (run in the peer's environment)."""

import os

import django
from django.core.management import call_command

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drf.settings")
django.setup()
call_command("migrate", verbosity=0)

from rest_framework_api_key.models import APIKey  # noqa: E402 (needs the app registry)

_, key = APIKey.objects.create_key(name="bench")
print(key)
