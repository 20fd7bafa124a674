"""The two ways to install: pip (pyproject.toml) and conda (environment.yml, which the rules also
name as their environment) must ask for the same packages with the same version bounds."""

import re
import tomllib

import yaml
from train_helpers import REPO


def requirements(specs) -> dict[str, str]:
    """Package name (lower case, '_' as '-') -> its version bounds, spaces removed."""
    parsed = {}
    for spec in specs:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", spec)
        parsed[match[1].lower().replace("_", "-")] = match[2].replace(" ", "")
    return parsed


def test_environment_yml_asks_for_what_pyproject_asks_for():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    conda = [d for d in environment if isinstance(d, str)]
    pip = next(d["pip"] for d in environment if isinstance(d, dict))
    wanted = requirements(project["dependencies"])
    given = requirements([*conda, *(p for p in pip if not p.startswith("-"))])
    assert {name: given.get(name) for name in wanted} == wanted
    assert given.pop("python") == project["requires-python"]
    assert set(given) - set(wanted) == {"pip"}, "environment.yml asks for more than pyproject"
    assert "-e ." in pip  # the package itself
