"""Hypothesis strategies: the many ways a client may write one path."""

from __future__ import annotations

from hypothesis import strategies as st

# Noise an upstream removes before routing, spelled before a segment: an empty segment
# (a repeated slash), a dot segment, a segment undone by the next.
NOISE = ["", ".", "%2E", "%2e", "x/..", "X/%2E%2e", "y/./.."]
SEGMENT_CHARS = st.characters(
    blacklist_characters="/\\;", blacklist_categories=("Cc", "Cs"), max_codepoint=0x2FFFF
)


def _segment_is_plain(segment: str) -> bool:
    return segment not in ("", ".", "..") and "%" not in segment


segments = st.lists(st.text(SEGMENT_CHARS, min_size=1, max_size=8).filter(_segment_is_plain))


@st.composite
def spelled_char(draw: st.DrawFn, char: str) -> str:
    """``char`` as a client may send it: raw when it may be, or percent-encoded in either
    case of hex digits; an ASCII letter in either case."""
    if char.isascii() and char.isalpha() and draw(st.booleans()):
        char = char.swapcase()
    if "!" <= char <= "~" and char not in "?#%" and draw(st.booleans()):
        return char
    form = "%{:02x}" if draw(st.booleans()) else "%{:02X}"
    return "".join(form.format(byte) for byte in char.encode())


@st.composite
def spelling(draw: st.DrawFn, path_segments: list[str]) -> str:
    """One of the many ways to write the path made of ``path_segments``."""
    parts: list[str] = []
    for segment in path_segments:
        parts.extend(draw(st.lists(st.sampled_from(NOISE), max_size=2)))
        parts.append("".join(draw(spelled_char(c)) for c in segment))
    query = draw(st.sampled_from(["", "?a=/../b", "?x=%2F", "#frag", "?q#f"]))
    return "/" + "/".join(parts) + query
