"""The wheel holds every package of the source tree: `pip install .` (CI, users) installs only
the packages pyproject.toml lists, unlike the editable install of development."""

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _listed() -> tuple[set[str], dict[str, str]]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(setuptools["packages"]), setuptools.get("package-dir", {})


def test_every_package_of_the_tree_is_in_the_wheel():
    packages, package_dir = _listed()
    roots = {"accelerator": ROOT / "accelerator",
             **{name: ROOT / path for name, path in package_dir.items()}}
    found = set()
    for name, root in roots.items():
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            found.add(".".join((name, *relative)))
    assert found - packages == set(), "add them to [tool.setuptools] packages in pyproject.toml"
    assert packages - found == set(), "pyproject.toml lists packages that do not exist"
