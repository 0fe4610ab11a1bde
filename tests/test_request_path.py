"""The canonical path forward auth matches routes on (SPEC section 5), with no HTTP around it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tessera.errors import InvalidRequest
from tessera.request_path import normalize_path, route_pattern
from tests.spellings import segments, spelling


@pytest.mark.parametrize(
    ("uri", "canonical"),
    [
        ("/v1/contacts", "/v1/contacts"),
        ("/v1/%63ontacts", "/v1/contacts"),
        ("/v1/contact%73", "/v1/contacts"),
        ("/V1/Contacts", "/v1/contacts"),
        ("/v1//contacts", "/v1/contacts"),
        ("//v1/contacts", "/v1/contacts"),
        ("/v1/./contacts", "/v1/contacts"),
        ("/v1/x/../contacts", "/v1/contacts"),
        ("/v1/x/%2e%2E/contacts", "/v1/contacts"),
        ("/../v1/contacts", "/v1/contacts"),
        ("/v1/contacts?limit=5&next=/admin", "/v1/contacts"),
        ("/v1/contacts#top", "/v1/contacts"),
        ("/v1/contacts/", "/v1/contacts/"),
        ("/v1/contacts/x/..", "/v1/contacts/"),
        ("/v1/%40me", "/v1/@me"),
        ("/v1/caf%C3%A9", "/v1/café"),
        ("/v1/a%20b", "/v1/a b"),
        ("/v1/100%25", "/v1/100%"),
        ("/", "/"),
    ],
)
def test_spellings_have_one_canonical_form(uri: str, canonical: str) -> None:
    """Escapes, case, dot segments, repeated slashes, query and fragment fold away."""
    assert normalize_path(uri) == canonical


@pytest.mark.parametrize(
    "uri",
    [
        "/v1%2Fcontacts",
        "/v1/%2fcontacts",
        "/v1\\contacts",
        "/v1/%5Ccontacts",
        "/v1/contacts%00",
        "/v1/contacts%0A",
        "/v1/%7F",
        "/public/..;/v1/contacts",
        "/v1;v=2/contacts",
        "/v1/%3B",
        "/v1/%2563ontacts",
        "/v1/%25%36%33",
        "/v1/%zz",
        "/v1/%6",
        "/v1/%",
        "/v1/%C3%28",
        "/v1/%C0%AF",
        "/v1/%FF",
        "/v1/café",
        "/v1/a b",
        "/v1/a\tb",
        "v1/contacts",
        "http://example.com/v1/contacts",
        "",
        "?/v1/contacts",
    ],
)
def test_ambiguous_paths_are_refused(uri: str) -> None:
    """What servers read in different ways has no canonical form: invalid_request."""
    with pytest.raises(InvalidRequest) as refused:
        normalize_path(uri)
    assert refused.value.code == "invalid_request" and refused.value.status == 400


@given(segments, st.data())
def test_every_spelling_of_a_path_has_the_same_canonical_form(
    path_segments: list[str], data: st.DataObject
) -> None:
    """Any two ways to write one path normalize to the same string."""
    first = data.draw(spelling(path_segments))
    second = data.draw(spelling(path_segments))
    assert normalize_path(first) == normalize_path(second)


@given(segments, st.data())
def test_the_canonical_form_is_the_decoded_path_folded(
    path_segments: list[str], data: st.DataObject
) -> None:
    """The canonical form is the path's own characters, case-folded, one slash apart."""
    expected = ("/" + "/".join(path_segments)).casefold()
    assert normalize_path(data.draw(spelling(path_segments))) == expected


@given(st.text() | st.from_regex(r"/[!-~]*", fullmatch=True))
def test_any_string_is_normalized_or_refused_as_invalid_request(uri: str) -> None:
    """No input escapes as another exception (which the edge would turn into a 500)."""
    try:
        path = normalize_path(uri)
    except InvalidRequest:
        return
    assert path.startswith("/") and "//" not in path
    assert not {"", ".", ".."} & set(path.split("/")[1:-1])


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/v1/contacts*", "/v1/contacts", True),
        ("/v1/contacts*", "/v1/contacts/42/notes", True),
        ("/V1/Contacts*", "/v1/contacts", True),
        ("/v1/%63ontacts", "/v1/contacts", True),
        ("/v1//contacts/", "/v1/contacts/", True),
        ("*", "/anything/at/all", True),
        ("/v1/*/notes", "/v1/a/b/notes", True),
        ("/v1/contacts", "/v1/contacts/", False),
        ("/v1/contacts*", "/v1/contact", False),
        ("/v1/[ab]", "/v1/a", False),
        ("/v1/[ab]", "/v1/[ab]", True),
        ("/v1/Café *", "/v1/café x", True),
    ],
)
def test_route_patterns_are_canonical_with_star_the_only_wildcard(
    pattern: str, path: str, matches: bool
) -> None:
    """Patterns fold like paths; '*' spans any characters, '/' included; '[' is literal."""
    assert (route_pattern(pattern).fullmatch(path) is not None) is matches


@pytest.mark.parametrize("pattern", ["/v1/contacts?x=1", "/v1#top", "/v1%2Fcontacts", "v1/*"])
def test_a_pattern_that_cannot_be_a_canonical_path_is_refused(pattern: str) -> None:
    """A pattern with a query, a fragment or an ambiguous spelling would never match."""
    with pytest.raises(InvalidRequest):
        route_pattern(pattern)
