"""What `pip install` puts in site-packages: the project's own top-level names, the config groups included."""
from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.cli import DSWARM, REPO, env


@pytest.mark.slow
def test_the_wheel_installs_conf_under_the_projects_name(tmp_path):
    """conf/ ships as data_swarms_conf, so installing the package cannot shadow another project's `conf`."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(REPO),
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info" not in n} == {"swarm", "generators", "objectives", "data_swarms_conf"}
    shipped = {n.removeprefix("data_swarms_conf/") for n in names if n.startswith("data_swarms_conf/") and n.endswith(".yaml")}
    assert shipped == {str(p.relative_to(REPO / "conf")) for p in (REPO / "conf").rglob("*.yaml")}


@pytest.mark.slow
def test_dswarm_reads_its_config_groups_from_the_installed_package(tmp_path):
    """From any directory: the config comes from data_swarms_conf, not from a `conf` next to the command."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("seed: 999\n")  # someone else's conf/ where the command starts
    out = subprocess.run([str(DSWARM), "--cfg", "job", "-p", "seed"], cwd=tmp_path, env=env(), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "0", out.stderr
