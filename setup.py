"""The installed packages: swarm, generators and objectives as found, and the config groups of conf/ as
``data_swarms_conf`` (a name no other project's ``conf`` module can collide with; the repo folder stays conf/).

pyproject.toml holds everything else; this file exists because a package installed under another name than its
folder cannot be said with ``[tool.setuptools.packages.find]``.
"""
from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["swarm*", "generators*", "objectives*"]), "data_swarms_conf"],
    package_dir={"data_swarms_conf": "conf"},
    package_data={"data_swarms_conf": ["**/*.yaml"]},
)
