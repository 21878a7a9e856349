"""Risk: the guard every order passes, its limits, windows, kill switch and trading state.

The modules run compiled by mypyc when a build matching their sources exists (gnosisd.core.native,
scripts/build_native.py), else as Python; `gnosisd.core.native.status()` says which.
"""

from gnosisd.core.native import enable

__path__ = enable(__path__, __name__)
