"""Output paths cannot escape the chosen folder."""

import os

import pytest

from agesearch.paths import safe_join, safe_name


@pytest.mark.parametrize("bad", ["", "..", "../x", "a/b", "/etc", ".hidden", "a\\b", "x..y", "a b", "<script>"])
def test_safe_name_rejects(bad):
    with pytest.raises(ValueError, match="not a plain name"):
        safe_name(bad, "experiment name")


def test_safe_name_accepts():
    assert safe_name("run-1.v2_final") == "run-1.v2_final"


def test_safe_join(tmp_path):
    assert safe_join(tmp_path, "a", "b.png") == (tmp_path / "a" / "b.png").resolve()
    for bad in (("..", "x"), ("/etc/passwd",), ("a", "../../x")):
        with pytest.raises(ValueError, match="escapes the output folder"):
            safe_join(tmp_path, *bad)
    os.symlink("/tmp", tmp_path / "link")
    with pytest.raises(ValueError, match="escapes"):
        safe_join(tmp_path, "link", "x")
