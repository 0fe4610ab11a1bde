"""The API key format: checksum, prefix, environment (SPEC section 2)."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from tessera.keys import format as key_format

PREFIXES = st.from_regex(r"[a-z0-9]{2,10}", fullmatch=True)
ENVIRONMENTS = st.sampled_from(["live", "test"])


@given(prefix=PREFIXES, environment=ENVIRONMENTS)
def test_every_generated_key_parses(prefix: str, environment: str) -> None:
    """Generated keys always pass the offline check, with the display prefix of the spec."""
    key = key_format.generate(prefix, environment)
    parsed = key_format.parse(key, prefix)
    assert parsed is not None
    body = key.split("_", 2)[2]
    assert len(body) == 36
    assert parsed.display_prefix == f"{prefix}_{environment}_{body[:6]}"


@given(
    prefix=PREFIXES,
    environment=ENVIRONMENTS,
    position=st.integers(min_value=0),
    replacement=st.sampled_from(key_format.BASE62 + "_-"),
)
def test_any_single_character_change_fails(
    prefix: str, environment: str, position: int, replacement: str
) -> None:
    """Changing any one character of a key makes it fail the check."""
    key = key_format.generate(prefix, environment)
    index = position % len(key)
    if key[index] == replacement:
        return
    changed = key[:index] + replacement + key[index + 1 :]
    assert key_format.parse(changed, prefix) is None


def test_checksum_is_crc32_of_everything_before_it_in_base62() -> None:
    """The last six characters are the zero-padded base62 CRC32 of the rest."""
    key = key_format.generate("acme", "live")
    number = 0
    for char in key[-6:]:
        number = number * 62 + key_format.BASE62.index(char)
    assert number == zlib.crc32(key[:-6].encode())


def test_other_prefix_and_random_strings_are_refused() -> None:
    """A key of another deployment, or noise of the right length, is not ours."""
    assert key_format.parse(key_format.generate("zeta", "live"), "acme") is None
    assert key_format.parse("acme_live_" + "a" * 36, "acme") is None
    assert key_format.parse("acme_prod_" + "a" * 36, "acme") is None
