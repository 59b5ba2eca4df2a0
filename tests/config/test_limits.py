"""The length limits, number ranges and directory depths of the config's value types, at
their edges: the longest value passes, one character more is refused, with the line
``pulumi up`` stops on."""

from __future__ import annotations

from typing import Any

import pytest

from components.config.errors import ConfigError
from components.model import values
from components.model.allowed.directories import DATA_ROOTS, data_directory
from components.model.allowed.restic import parse_repository
from tests.config.test_allowed import with_values
from tests.config.test_properties import run_parse
from tests.harness import local_config


def refusal(config: dict[str, Any]) -> str | None:
    """The lines the program stops with for ``config``, or None when it is accepted."""
    try:
        run_parse(config)
    except ConfigError as error:
        return str(error)
    return None


def refusal_of(**settings: Any) -> str | None:
    """The same for the site config with ``a.b`` set to each value (``a__b`` works too)."""
    return refusal(with_values(**settings))


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


def test_a_port_from_1_to_65535_is_accepted_and_65536_is_refused() -> None:
    assert refusal_of(sshPort=1) is None
    assert refusal_of(sshPort=65535) is None
    assert refusal_of(sshPort=65536) == (
        "hemma:sshPort: must be a port number from 1 to 65535 (got '65536')"
    )


def test_an_image_reference_of_512_characters_passes_and_513_is_refused() -> None:
    longest = "registry.example.test/" + "a" * 487 + ":16"
    assert len(longest) == 512
    assert refusal_of(**{"postgres.image": longest}) is None
    assert refusal_of(**{"postgres.image": longest.replace(":16", "a:16")}) == (
        "hemma:postgres.image: not a valid image reference "
        "(got 'registry.example.test/aaaaaaaaaaaaaaaaa... (513 characters))"
    )


def test_an_absolute_path_of_1024_characters_passes_and_1025_is_refused() -> None:
    longest = "/srv/hemma/" + "d" * 1013
    assert len(longest) == 1024
    assert refusal_of(**{"backups.dumpsDirectory": longest}) is None
    assert refusal_of(**{"backups.dumpsDirectory": longest + "d"}) == (
        "hemma:backups.dumpsDirectory: must be an absolute path of letters, digits and "
        "._@+- (no spaces, no ..) (got '/srv/hemma/dddddddddddddddddddddddddddd... "
        "(1025 characters))"
    )


def test_a_private_key_of_16384_characters_passes_and_16385_is_refused_unshown() -> None:
    assert refusal_of(sshPrivateKey="k" * 16384) is None
    assert refusal_of(sshPrivateKey="k" * 16385) == (
        "hemma:sshPrivateKey: must be at most 16384 characters"
    )


def test_a_secret_of_one_character_passes_and_an_empty_one_is_refused() -> None:
    """The length of a key or password is the operator's business; empty is a mistake."""
    assert refusal_of(sshPrivateKey="k", smtpPassword="x") is None
    assert refusal_of(sshPrivateKey="") == "hemma:sshPrivateKey: must not be empty"
    assert refusal_of(smtpPassword="") == "hemma:smtpPassword: must not be empty"


@pytest.mark.parametrize(
    ("key", "lowest", "highest", "refused"),
    [
        ("smartLogs.keepDays", 1, 3650, "must be at most 3650 (got 3651)"),
        ("classHub.helperQueueSlotTtlSeconds", 1, 3600, "must be at most 3600 (got 3601)"),
        ("classHub.helperQueueMaxWaitSeconds", 0.1, 600, "must be at most 600 (got 601)"),
    ],
)
def test_a_number_is_accepted_from_its_lowest_to_its_highest_and_refused_one_above(
    key: str, lowest: float, highest: int, refused: str
) -> None:
    assert refusal_of(**{key: lowest}) is None
    assert refusal_of(**{key: highest}) is None
    assert refusal_of(**{key: highest + 1}) == f"hemma:{key}: {refused}"


def test_the_local_stack_s_metrics_directory_is_one_of_its_own_under_tmp() -> None:
    """Docker Desktop shares /tmp; /tmp itself holds every other program's files."""

    def local_metrics(directory: str) -> str | None:
        config = local_config()
        config["backups"] = {**config["backups"], "metricsDirectory": directory}
        return refusal(config)

    assert local_metrics("/tmp/hemma") is None
    assert local_metrics("/tmp") == (
        "hemma:backups.metricsDirectory: must be a directory of its own under /root, /srv, "
        "/mnt, /media, /var/backups, /var/lib/hemma or /var/snap/docker/common (not "
        "Docker's data), not hidden (or /tmp, for the local stack) (got '/tmp')"
    )
