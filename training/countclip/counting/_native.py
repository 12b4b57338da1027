"""The compiled count core: `countclip.counting.core` from a mypyc build, used only while it is current.

`python -m countclip.counting.build` (run by `make setup`) compiles `core.py` with mypyc into
`counting/_mypyc/`: the extension modules, and `build.json`, which records the SHA-256 of
the sources it compiled and of each file it wrote. Nothing there is found by the normal
import system. `install()`, run by `countclip/counting/__init__.py`, puts a finder in front
that imports `countclip.counting.core` from that build only when

- the environment variable COUNTCLIP_PURE_PYTHON is unset, empty or "0",
- `build.json` says the build succeeded, for this interpreter's ABI,
- `core.py` and `lexicon.py` next to this file hash to what was compiled, and the
  extension files to what was written.

Otherwise `import countclip.counting.core` imports `core.py`. So an edited `core.py` is never
shadowed by an older build: the finder warns (RuntimeWarning) that the build is stale and
imports the source. A build that fails to load falls back to the source too, with a warning,
and an extension module lying next to `core.py` or `lexicon.py` (which the normal
import system would prefer to the source) is ignored, with a warning.
`implementation(countclip.counting.core)` says which one a process got.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

PACKAGE = __name__.rpartition(".")[0]  # "countclip.counting"
PACKAGE_DIR = Path(__file__).resolve().parent
BUILD_DIR = "_mypyc"
STAMP = "build.json"
STAMP_FORMAT = 1
SOURCES = ("core.py", "lexicon.py")  # what the compiled module was built from
MODULE = "core"  # the module that is compiled
PURE_ENV = "COUNTCLIP_PURE_PYTHON"
REBUILD = "make native (or: training/.venv/bin/python -m countclip.counting.build mypyc)"


def sha256(path: Path) -> str:
    import hashlib  # here, not at the top: `import countclip.counting` stays cheap

    return hashlib.sha256(path.read_bytes()).hexdigest()


def extension_suffix() -> str:
    """The file-name suffix of this interpreter's extension modules (.cpython-311-x86_64-linux-gnu.so)."""
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def current_build(package_dir: Path = PACKAGE_DIR,
                  honour_env: bool = True) -> tuple[dict[str, Path] | None, str, bool]:
    """(module name -> extension file) of a usable build, or None; why not; whether to warn.

    Warns only when a build exists that must not be used for a reason its owner should hear
    of (sources edited since, files changed); no build, a failed build, or one for another
    Python are quiet (the build step said so when it ran).
    """
    if honour_env and os.environ.get(PURE_ENV, "") not in ("", "0"):
        return None, f"{PURE_ENV} is set", False
    import json  # here, not at the top: `import countclip.counting` stays cheap

    build = package_dir / BUILD_DIR
    try:
        stamp = json.loads((build / STAMP).read_text("utf-8"))
    except FileNotFoundError:
        return None, "not built", False
    except (OSError, ValueError) as error:
        return None, f"{build / STAMP} is unreadable ({error})", True
    if not isinstance(stamp, dict) or stamp.get("format") != STAMP_FORMAT:
        return None, f"{build / STAMP} has another format", True
    if not stamp.get("ok"):
        return None, f"the last build failed: {stamp.get('error', '?')}", False
    if stamp.get("suffix") != extension_suffix():
        return None, f"built for another Python ({stamp.get('python')})", False
    try:
        sources = stamp["sources"]
        if sorted(sources) != sorted(SOURCES):
            return None, f"built from other files ({sorted(sources)})", True
        for name in SOURCES:
            if sha256(package_dir / name) != sources[name]:
                return None, f"stale: {name} changed since the build", True
        files = {}
        for module, entry in stamp["modules"].items():
            path = build / entry["file"]
            if sha256(path) != entry["sha256"]:
                return None, f"{path.name} changed since the build", True
            files[module] = path
    except (OSError, KeyError, TypeError, AttributeError) as error:
        return None, f"incomplete build ({error!r})", True
    if MODULE not in files:
        return None, f"{STAMP} lists no {MODULE} module", True
    return files, "current", False


def implementation(module: ModuleType) -> str:
    """"mypyc" when `module` was loaded from a compiled build, else "python"."""
    origin = getattr(module, "__file__", None) or ""
    return "mypyc" if origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)) else "python"


class _Loader(importlib.machinery.ExtensionFileLoader):
    """Loads a compiled module; for the count core, the source instead if that fails."""

    def __init__(self, fullname: str, path: str, source: Path):
        super().__init__(fullname, path)
        self.source = source
        self.source_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec):  # type: ignore[override]
        try:
            return super().create_module(spec)
        except Exception as error:  # noqa: BLE001  (whatever the compiled module's start raised)
            if spec.name != f"{PACKAGE}.{MODULE}":
                raise  # a support module: its failure reaches the count core's loader below
            warnings.warn(f"{PACKAGE}: the compiled count core in {Path(self.path).parent} failed to load "
                          f"({error!r}); importing the pure-Python {self.source.name} instead; rebuild: {REBUILD}",
                          RuntimeWarning, stacklevel=2)
            self.source_spec = importlib.util.spec_from_file_location(spec.name, self.source)
            assert self.source_spec is not None and self.source_spec.loader is not None
            return importlib.util.module_from_spec(self.source_spec)

    def exec_module(self, module: ModuleType) -> None:
        if self.source_spec is None:
            super().exec_module(module)
            return
        module.__spec__ = self.source_spec
        module.__loader__ = self.source_spec.loader
        self.source_spec.loader.exec_module(module)  # type: ignore[union-attr]


class _Finder:  # a meta path finder (importlib.abc, not imported: it costs ~10 ms)
    """Finds `countclip.counting.core` (and the compiled modules it imports) in a current build,
    else core.py; and lexicon.py always (it is never compiled)."""

    def __init__(self, package_dir: Path):
        self.countclip_package_dir = package_dir
        self.files: dict[str, Path] = {}
        self.reason = f"{PACKAGE}.{MODULE} not imported yet"

    def find_spec(self, fullname, path, target=None):
        package, _, name = fullname.rpartition(".")
        if package != PACKAGE or not path or not self._ours(path):
            return None
        if name == MODULE:  # decided afresh at each import of the count core
            files, self.reason, warn = current_build(self.countclip_package_dir)
            self.files = files or {}
            if warn:
                warnings.warn(f"{PACKAGE}: not using the compiled count core in "
                              f"{self.countclip_package_dir / BUILD_DIR}: {self.reason}; importing the pure-Python "
                              f"{MODULE}.py instead (same results, slower). Rebuild: {REBUILD}",
                              RuntimeWarning, stacklevel=2)
        file = self.files.get(name)
        if file is not None:
            loader = _Loader(fullname, str(file), self.countclip_package_dir / f"{MODULE}.py")
            return importlib.util.spec_from_file_location(fullname, file, loader=loader)
        if f"{name}.py" not in SOURCES:
            return None
        # The source itself, not whatever the normal finders prefer to it: an extension module
        # next to core.py (`mypyc countclip/counting/core.py` run by hand) would come first there.
        source = self.countclip_package_dir / f"{name}.py"
        strays = [source.with_name(name + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES]
        for stray in strays:
            if stray.exists():
                warnings.warn(f"{PACKAGE}: ignoring {stray} (not made by build.py, which builds into "
                              f"{BUILD_DIR}/); importing {source.name}", RuntimeWarning, stacklevel=2)
        return importlib.util.spec_from_file_location(fullname, source)

    def _ours(self, path) -> bool:
        return any(os.path.realpath(entry) == str(self.countclip_package_dir) for entry in path)


def install(package_dir: Path = PACKAGE_DIR) -> None:
    """Put the finder in front of the normal ones (once per package directory)."""
    if not any(getattr(finder, "countclip_package_dir", None) == package_dir for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder(package_dir))


def status() -> str:
    """Which count core `import countclip.counting.core` gives in this process, and why."""
    module = sys.modules.get(f"{PACKAGE}.{MODULE}")
    if module is not None and implementation(module) == "mypyc":
        return "mypyc"
    return "python: " + current_build()[1]
