"""The two ways to install: pip (pyproject.toml) and conda (environment.yml, which the rules also
name as their environment) must ask for the same packages with the same version bounds; the pinned
versions a test run last passed with (workflow/envs/pip-constraints.txt) must lie inside them."""

import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from train_helpers import REPO


def requirements(specs) -> dict[str, str]:
    """Package name (canonical) -> its version bounds (normalized by packaging's SpecifierSet)."""
    parsed = {}
    for spec in specs:
        requirement = Requirement(spec)
        parsed[canonicalize_name(requirement.name)] = str(requirement.specifier)
    return parsed


def test_environment_yml_asks_for_what_pyproject_asks_for():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]
    conda = [d for d in environment if isinstance(d, str)]
    pip = next(d["pip"] for d in environment if isinstance(d, dict))
    wanted = requirements(project["dependencies"])
    given = requirements([*conda, *(p for p in pip if not p.startswith("-"))])
    assert {name: given.get(name) for name in wanted} == wanted
    assert given.pop("python") == str(SpecifierSet(project["requires-python"]))
    assert set(given) - set(wanted) == {"pip"}, "environment.yml asks for more than pyproject"
    assert "-e ." in pip  # the package itself


def pinned_versions(path) -> dict[str, str]:
    """Package name (canonical) -> the one version a pip constraints file pins it to."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (pin,) = requirement.specifier  # exactly one `==version` per line
            assert pin.operator == "==", f"{line} does not pin one version"
            pins[canonicalize_name(requirement.name)] = pin.version
    return pins


def test_the_tested_versions_satisfy_pyproject_and_pin_every_dependency():
    """workflow/envs/pip-constraints.txt holds the versions a fresh clone's test run passed with;
    `pip install -c` on it must be possible, so each pin must lie inside pyproject's bounds."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = pinned_versions(REPO / "workflow" / "envs" / "pip-constraints.txt")
    for spec in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {spec}"
    assert canonicalize_name("vitnqs") not in pins  # the package itself is installed with -e
