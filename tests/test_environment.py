"""The tools the project installs (`make test` runs scripts/install-system-deps and installs the extras).

Some tests skip with a reason when one of these is missing, so that a partial install still runs the rest; this
test makes sure a missing install fails the suite instead of hiding behind those skips.
"""

import importlib.util
import shutil

import pytest


@pytest.mark.parametrize("tool", ["bcftools", "tabix", "bgzip", "java", "chromium"])
def test_system_tool_installed(tool):
    assert shutil.which(tool), f"{tool} is not on PATH: run scripts/install-system-deps"


@pytest.mark.parametrize("module", ["pyspark", "snakemake", "hypothesis"])
def test_python_extra_installed(module):
    assert importlib.util.find_spec(module), f"{module} is not installed: pip install -e '.[test,spark,workflow]'"
