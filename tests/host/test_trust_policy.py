"""``[trust]`` in ``HOME/policy.toml``: the operator's TUF roots and the v1 fallback, read
with a clear error naming the file and the key for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugport.errors import InvalidInputError
from plugport.host.policy import parse_trust

WHERE = "HOME/policy.toml"


def test_no_table_means_no_roots_and_the_fallback_allowed(tmp_path: Path) -> None:
    policy = parse_trust(None, home=tmp_path, where=WHERE)
    assert policy.tuf_roots == {}
    assert policy.index_fallback is True


def test_roots_are_read_relative_to_the_home(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_bytes(b"{}")
    policy = parse_trust(
        {"tuf_roots": {"https://reg.example/": "r.json"}, "index_fallback": False},
        home=tmp_path,
        where=WHERE,
    )
    assert policy.tuf_roots == {"https://reg.example": b"{}"}
    assert policy.index_fallback is False


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ("yes", "a table with tuf_roots"),
        ({"roots": {}}, "a table with tuf_roots"),
        ({"index_fallback": "no"}, "index_fallback: true or false, not 'no'"),
        ({"tuf_roots": ["x"]}, "[trust.tuf_roots]: a table of registry URL = root file"),
        ({"tuf_roots": {"ftp://x": "r.json"}}, "'ftp://x': write \"https://registry\""),
        ({"tuf_roots": {"https://x": 3}}, "'https://x': write \"https://registry\""),
        ({"tuf_roots": {"https://x": "missing.json"}}, "cannot read"),
    ],
)
def test_bad_trust_tables_are_refused_naming_the_key(
    tmp_path: Path, table: object, says: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_trust(table, home=tmp_path, where=WHERE)
    assert WHERE in str(caught.value)
    assert says in str(caught.value)


def test_a_workspace_of_the_host_service_reads_trust_from_its_home(tmp_path: Path) -> None:
    import asyncio

    from plugport.host.service.settings import HostServiceSettings
    from plugport.host.service.workspaces import Workspace

    home = tmp_path / "team"
    home.mkdir()
    (home / "root.json").write_bytes(b'{"signed": {"_type": "root"}}')
    (home / "policy.toml").write_text(
        '[trust]\nindex_fallback = false\n[trust.tuf_roots]\n"https://reg.example" = "root.json"\n'
    )
    settings = HostServiceSettings(data_dir=tmp_path, registries=("https://reg.example",))
    workspace = Workspace("team", home, settings, [])
    try:
        assert workspace.host.fetcher.tuf_roots == {
            "https://reg.example": b'{"signed": {"_type": "root"}}'
        }
        assert workspace.host.fetcher.index_fallback is False
    finally:
        asyncio.run(workspace.close())
