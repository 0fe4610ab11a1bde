"""The contacts endpoint, protected by an API key, and the same endpoint unprotected."""

from typing import Any, ClassVar

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class Contacts(APIView):
    def get(self, request: Request) -> Response:
        return Response({"data": [], "caller": None})


class Unprotected(Contacts):
    permission_classes: ClassVar[list[Any]] = [AllowAny]


urlpatterns = [
    path("v1/contacts", Contacts.as_view()),
    path("v1/contacts-unprotected", Unprotected.as_view()),
]
