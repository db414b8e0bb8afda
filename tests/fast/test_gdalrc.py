"""The gdalrc, written from the one list of recommended settings: its text, its link, where a
package finds it, and the README's table saying which settings it holds."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from helpers import ROOT

from gdal_lambda import runtime


def test_gdalrc_holds_the_options_it_names_with_their_recommended_values() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(runtime.gdalrc_text())
    assert parser.sections() == ["configoptions"]
    assert dict(parser["configoptions"]) == {
        name: runtime.RECOMMENDED_GDAL_ENV[name] for name in runtime.GDALRC_OPTIONS
    }
    # memory-dependent and use-dependent settings stay the function's
    for name in ("GDAL_CACHEMAX", "VSI_CACHE_SIZE", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS"):
        assert name not in runtime.GDALRC_OPTIONS


def test_write_gdalrc_links_the_sysconfdir_path_to_the_file(tmp_path: Path) -> None:
    written = runtime.write_gdalrc(tmp_path)
    link = tmp_path / runtime.SYSCONF_GDALRC
    assert written == tmp_path / runtime.GDALRC
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()
    assert link.read_text() == runtime.gdalrc_text()
    runtime.write_gdalrc(tmp_path)  # again, over the existing link
    assert link.resolve() == written.resolve()


def test_a_full_package_is_pointed_at_its_gdalrc_and_a_layer_is_not() -> None:
    assert runtime.data_env(runtime.TASK_ROOT)["GDAL_CONFIG_FILE"] == (
        f"{runtime.TASK_ROOT}/{runtime.GDALRC}"
    )
    assert "GDAL_CONFIG_FILE" not in runtime.data_env()


def test_the_readme_says_which_settings_the_gdalrc_holds() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Lambda settings") : text.index("### Reading COG tiles")]
    where: dict[str, str] = {}
    for row in re.finditer(r"^\| (.+?) \| (.+?) \| (.+?) \|", section, re.M):
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.group(1)):
            where[name] = row.group(3)
    for name in runtime.RECOMMENDED_GDAL_ENV:
        assert name in where, f"README's Lambda settings table lacks {name}"
        assert (where[name] == "gdalrc") == (name in runtime.GDALRC_OPTIONS), name
    block = re.search(r"```ini\n(.*?)```", section, re.S)
    assert block and block.group(1) == runtime.gdalrc_text().split("\n", 2)[2]
