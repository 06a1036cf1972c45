"""The pins the README promises: one package set for pip (make env) and conda (environment.yml)."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pins(path):
    pins = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_lock_pins_the_stack():
    lock = _pins("requirements/lock.txt")
    assert lock["jax"] == "0.5.3" and lock["jaxlib"] == "0.5.3"
    for name in ("optax", "numpy", "scipy", "h5py", "matplotlib", "seaborn", "jupyterlab", "jupytext",
                 "papermill", "nbval", "tqdm", "frozendict", "pytest", "scikit-learn", "ipywidgets"):
        assert name in lock, f"{name} missing from requirements/lock.txt"
    assert "tensorflow" not in lock and "neural-tangents" not in lock


def test_neural_tangents_pinned_separately():
    assert _pins("requirements/neural-tangents.txt") == {"neural-tangents": "0.6.5"}


def test_installed_versions_match_the_lock():
    from importlib.metadata import version

    lock = _pins("requirements/lock.txt")
    for name in ("jax", "jaxlib", "numpy", "scipy", "optax", "papermill"):
        assert version(name) == lock[name], name
    assert version("neural-tangents") == "0.6.5"
    assert sys.version_info[:2] == (3, 11)


def test_environment_yml_describes_the_same_set():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*- python=3\.11\s*$", text, re.M)
    assert re.search(r"^\s*- -r requirements/lock\.txt\s*$", text, re.M)
    assert "requirements/neural-tangents.txt" in text  # the documented --no-deps step


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in readme
    assert "make reproduce" in readme
