"""The length limits and directory depths of the config's value types, at their edges:
the longest value passes, one character more is refused."""

from __future__ import annotations

import pytest

from components.model import values
from components.model.allowed.directories import DATA_ROOTS, data_directory
from components.model.allowed.restic import parse_repository


def test_a_hostname_of_253_characters_passes_and_254_is_refused() -> None:
    """RFC 1035: 253 characters in the dotted form, 63 per label."""
    longest = ".".join(["a" * 63] * 3 + ["a" * 61])
    assert len(longest) == 253 and values._hostname(longest) == longest
    with pytest.raises(ValueError, match="not a valid hostname"):
        values._hostname(longest + "a")


def test_an_env_value_of_the_longest_length_passes_and_one_more_is_refused() -> None:
    assert values._printable("v" * values.MAX_TEXT) == "v" * values.MAX_TEXT
    with pytest.raises(ValueError, match=f"at most {values.MAX_TEXT} characters"):
        values._printable("v" * (values.MAX_TEXT + 1))


def test_a_repository_of_2048_characters_passes_and_2049_is_refused() -> None:
    head = "s3:https://s3.example.com/bucket"
    longest = head + ("/" + "p" * 251) * 8  # eight parts of 251: each under 255
    assert len(longest) == 2048
    assert parse_repository(longest).backend == "s3"
    with pytest.raises(ValueError, match="must be /DIR"):
        parse_repository(longest + "q")


def test_a_malformed_repository_with_credentials_is_refused_without_them() -> None:
    """The authority is the part after the first ``//``: a second ``//`` in the path must
    not hide the password from the check that keeps it out of the error."""
    with pytest.raises(ValueError) as refused:
        parse_repository("s3:https://user:pa55word@host//x y")
    assert "credentials" in str(refused.value) and "pa55word" not in str(refused.value)


ROOT_DEPTHS = {
    "/root": 1, "/srv": 1, "/mnt": 1, "/media": 1, "/var/backups": 1,
    "/var/lib/hemma": 0, "/var/snap/docker/common": 1,
}  # fmt: skip
"""A job's own directory, one level into a shared root (``/srv/hemma``); hemma's own
state directory may be used as it is."""


def test_the_data_roots_are_the_ones_written_down_here() -> None:
    assert DATA_ROOTS.keys() == ROOT_DEPTHS.keys()


@pytest.mark.parametrize(("root", "depth"), sorted(ROOT_DEPTHS.items()))
def test_a_data_directory_is_accepted_at_its_root_s_depth_and_not_above(
    root: str, depth: int
) -> None:
    deep_enough = root + "/hemma" * depth
    assert data_directory(deep_enough) == deep_enough
    if depth:
        with pytest.raises(ValueError, match="must be a directory of its own"):
            data_directory(root + "/hemma" * (depth - 1))
