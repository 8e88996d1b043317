"""Each script documents its contract in its header, and only uses the keys it is given."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from conveyor.scripts import SCRIPT_NAMES, function_name, library, source

FOLDER = resources.files("conveyor.scripts")


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_the_header_names_the_arguments_and_return_codes(name: str) -> None:
    text = FOLDER.joinpath(f"{name}.lua").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("--"))
    assert header.startswith(f"-- {name}:"), "first line: '-- <name>: what it does'"
    assert "ARGV" in header
    assert "Returns" in header


def test_scripts_never_build_key_names() -> None:
    """Redis Cluster needs every key passed in KEYS: no string-built key may reach redis.call."""
    _, text = library()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    assert not re.search(r"redis\.call\(\s*'\w+'\s*,\s*[^,)]*\.\.", code)


def test_the_library_holds_every_script_as_a_function_of_this_version() -> None:
    name, text = library()
    assert text.startswith(f"#!lua name={name}\n")
    for script in SCRIPT_NAMES:
        assert f"redis.register_function('{function_name(script)}'," in text
        assert source(script) in text
