"""The pins the README promises (one package set for pip (make env) and conda (environment.yml)), and the test
tiers CI runs."""

import os
import re
import subprocess
import sys
import tomllib
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


def _make_dry_run(target: str) -> list[str]:
    """The pytest command lines ``make -n <target>`` would run (the venv set-up lines left out)."""
    out = subprocess.run(["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True, check=True,
                         env={**os.environ, "MAKEFLAGS": ""}).stdout
    return [line for line in out.splitlines() if " -m pytest " in line]


def test_ci_runs_every_tier_and_the_x64_job():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci.index("make test") < ci.index("make test-x64")  # the README's command, then the float64 job
    (full,) = _make_dry_run("test")
    args = full.split(" -m pytest ")[1].split()
    assert args[:2] == ["tests", "notebooks"] and "--nbval-lax" in args and "-m" not in args  # nothing deselected
    (fast,) = _make_dry_run("test-fast")
    assert '-m "not slow and not notebook"' in fast
    (x64,) = _make_dry_run("test-x64")
    assert x64.split(" -m pytest ")[1].split()[:2] == ["tests/test_ntk.py", "tests/test_infinite_ae.py"]
    makefile = (ROOT / "Makefile").read_text()
    assert "test-x64: export JAX_ENABLE_X64 = 1" in makefile
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^\s*make test(\s|$)", readme, re.M), "the README's test command is `make test`"


def test_pytest_markers_are_declared_and_used():
    """``-m "not slow"`` silently keeps tests whose marker is misspelt: every marker used must be declared."""
    declared = set()
    with open(ROOT / "pyproject.toml", "rb") as fh:
        for entry in tomllib.load(fh)["tool"]["pytest"]["ini_options"]["markers"]:
            declared.add(entry.split(":")[0].strip())
    used = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        used |= set(re.findall(r"pytest\.mark\.([a-z_]+)", path.read_text()))
    used -= {"parametrize", "skipif", "xfail", "filterwarnings", "usefixtures", "skip"}
    assert used <= declared, f"undeclared markers: {used - declared}"
    assert {"slow", "notebook"} <= used
