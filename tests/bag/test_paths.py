"""Manifest path encoding (RFC 8493 2.1.3) and path safety."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from preserve.bag.paths import decode_manifest_path, encode_manifest_path, unsafe_reason

names = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1)


@given(names)
def test_encoding_round_trips(name: str) -> None:
    encoded = encode_manifest_path(name)
    assert "\n" not in encoded and "\r" not in encoded
    assert decode_manifest_path(encoded) == name


@given(names)
def test_encoded_percent_is_uppercase_and_only_three_escapes(name: str) -> None:
    encoded = encode_manifest_path(name)
    assert encoded.count("%") == name.count("%") + name.count("\r") + name.count("\n")
    for i, ch in enumerate(encoded):
        if ch == "%":
            assert encoded[i + 1:i + 3] in ("25", "0D", "0A")


def test_lowercase_escapes_are_decoded() -> None:
    assert decode_manifest_path("data/a%0ab%0dc%25") == "data/a\nb\rc%"
    assert decode_manifest_path("data/100%.wav") == "data/100%.wav"


def test_unsafe_paths() -> None:
    assert unsafe_reason("data/ok/~tilde.wav") is None
    assert unsafe_reason("data/a..b.wav") is None
    assert unsafe_reason("data/../x") == "'..' segment escapes the bag"
    assert unsafe_reason("data\\..\\x") == "'..' segment escapes the bag"
    assert unsafe_reason("/abs") == "absolute path"
    assert unsafe_reason("D:x") == "Windows drive path"
    assert unsafe_reason("\\\\srv\\s") == "UNC network path"
    assert unsafe_reason("~user/x") == "leading '~' (home directory)"
    assert unsafe_reason("data//x") == "empty path segment"
