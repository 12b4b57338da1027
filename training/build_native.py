#!/usr/bin/env python
"""Compile the count core (countclip/counts.py) with mypyc: `find_count` about 1.7x faster.

    training/.venv/bin/python training/build_native.py            # build if counts.py changed
    training/.venv/bin/python training/build_native.py --check    # say what `import countclip.counts` gets
    training/.venv/bin/python training/build_native.py --clean    # remove the build

Optional: `make setup` runs it, and without a build (no mypy, no C compiler, a failed
compile) `countclip.counts` is the pure-Python module, which gives the same results. The
build goes to `countclip/_mypyc/` (git-ignored): the extension modules and `build.json`
with the SHA-256 of the sources compiled and of each file written. `countclip._native`
imports the compiled module only while counts.py and counts_lexicon.py still hash to what
was compiled, so an edited counts.py is never shadowed by an older build (it warns and
imports the source instead). Set COUNTCLIP_PURE_PYTHON=1 to import the source regardless.

Steps: copy the sources to a temporary directory, compile them there with `python -m mypyc`
(needs the `mypy` package, from the dev extras, and a C compiler), check in a fresh
interpreter that the compiled module gives the pure module's results on fixed and CountBench
captions, then swap the new `_mypyc/` in by renames (a running process keeps its old files).
Exits 0 whatever happens (1 with --strict when there is no current build at the end).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent  # training/
PACKAGE_DIR = ROOT / "countclip"

# countclip._native without importing countclip (whose __init__ would install its finder).
_spec = importlib.util.spec_from_file_location("_countclip_native", PACKAGE_DIR / "_native.py")
assert _spec is not None and _spec.loader is not None
native = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native)

BUILD = PACKAGE_DIR / native.BUILD_DIR
COMPILE_TIMEOUT_S = 900

# Run in a fresh interpreter inside the temporary build: the compiled module (found before
# counts.py there, as extension modules come first) against the pure one on fixed captions
# and, when ../shared is there, CountBench's.
VERIFY = textwrap.dedent("""
    import importlib.machinery, importlib.util, json, pathlib, random, sys
    import countclip.counts as compiled
    assert compiled.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), compiled.__file__
    spec = importlib.util.spec_from_file_location("pure_counts", "countclip/counts.py")
    pure = sys.modules["pure_counts"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pure)
    texts = ["three cats on a sofa", "Two dogs and 2 cats", "a pair of jeans", "One Direction",
             "5 kg of apples", "two or three birds", "10 Best Places", "the 1990s", "", "x" * 300,
             "half a dozen eggs", "TWO CATS", "1 cat", "one of the two boys", "fifty cats", "4 chairs"]
    countbench = pathlib.Path(sys.argv[1])
    if countbench.is_file():
        texts += [entry["text"] for entry in json.loads(countbench.read_text("utf-8"))]

    def results(m, text):
        found = m.find_count(text)
        out = [repr(found), m.explain(text), m.parse_query(text)]
        counterfactual = m.make_counterfactual(text, random.Random(text))
        out.append(counterfactual)
        if found is not None:
            out.append(m.replace_count(text, (found.start, found.end), 7))
            try:
                out.append(m.count_variants(text, found.count))
            except ValueError as error:
                out.append(str(error))
        return out

    bad = [t for t in texts if results(compiled, t) != results(pure, t)]
    assert not bad, f"{len(bad)} of {len(texts)} captions differ, first: {bad[0]!r}"
    print(f"verified: the compiled module gives the pure module's results on {len(texts)} captions")
""")


def log(message: str) -> None:
    print(f"build_native: {message}", flush=True)


def write_stamp(directory: Path, stamp: dict) -> None:
    (directory / native.STAMP).write_text(json.dumps(stamp, indent=2) + "\n", "utf-8")


def install(new: Path) -> None:
    """Make `new` the build directory by renames: never a half-written _mypyc/."""
    old = None
    if BUILD.exists():
        old = BUILD.with_name(f"{native.BUILD_DIR}.old-{os.getpid()}")
        BUILD.rename(old)
    new.rename(BUILD)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def base_stamp(sources: dict[str, bytes]) -> dict:
    return {"format": native.STAMP_FORMAT, "ok": False, "python": sys.version.split()[0],
            "suffix": native.extension_suffix(),
            "sources": {name: hashlib.sha256(data).hexdigest() for name, data in sources.items()}}


def new_build_dir() -> Path:
    new = Path(tempfile.mkdtemp(prefix=f"{native.BUILD_DIR}.new-", dir=PACKAGE_DIR))
    new.chmod(0o755)
    return new


def record_failure(sources: dict[str, bytes], error: str) -> None:
    """Replace any build by a stamp of the failure (quiet at import; `make` won't retry until
    the sources change)."""
    new = new_build_dir()
    write_stamp(new, {**base_stamp(sources), "error": error})
    install(new)
    log(f"not built: {error}")
    log("countclip.counts stays the pure-Python module (same results, about 1.7x slower)")


def compile_in(tmp: Path, sources: dict[str, bytes]) -> dict[str, Path]:
    """Compile copies of the sources in `tmp`; module name -> extension file."""
    package = tmp / "countclip"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, data in sources.items():
        (package / name).write_bytes(data)
    env = {**os.environ, "MYPYC_OPT_LEVEL": "3", "MYPY_CACHE_DIR": str(tmp / ".mypy_cache")}
    proc = subprocess.run([sys.executable, "-m", "mypyc", f"countclip/{native.MODULE}.py"], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"mypyc failed (exit {proc.returncode}):\n{tail}")
    suffix = native.extension_suffix()
    files = {path.name[:-len(suffix)]: path for path in package.iterdir() if path.name.endswith(suffix)}
    stray = [str(p.relative_to(tmp)) for p in tmp.iterdir() if p.name.endswith(suffix)]
    if native.MODULE not in files or stray:
        raise RuntimeError(f"unexpected mypyc output: {sorted(files)} in countclip/, {stray} outside")
    return files


def build(force: bool) -> bool:
    sources = {name: (PACKAGE_DIR / name).read_bytes() for name in native.SOURCES}
    files, reason, _ = native.current_build(PACKAGE_DIR, honour_env=False)
    if files is not None and not force:
        os.utime(BUILD / native.STAMP)  # for make: up to date with the sources
        log(f"up to date ({BUILD})")
        return True
    if importlib.util.find_spec("mypyc") is None:
        record_failure(sources, f"mypy (mypyc) is not installed in {sys.executable} "
                                "(pip install -e 'training[dev]')")
        return False
    log(f"compiling countclip/{native.MODULE}.py with mypyc ({reason.splitlines()[0]}) ...")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="countclip-mypyc-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            compiled = compile_in(tmp, sources)
            countbench = ROOT.parent.parent / "shared" / "countbench" / "CountBench.json"
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            proc = subprocess.run([sys.executable, "-c", VERIFY, str(countbench)], cwd=tmp, capture_output=True,
                                  text=True, timeout=600, env=env)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
                raise RuntimeError(f"the compiled module failed its check:\n{tail}")
            log(proc.stdout.strip())
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            record_failure(sources, str(error))
            return False
        new = new_build_dir()
        modules = {}
        for module, path in sorted(compiled.items()):
            shutil.copy2(path, new / path.name)
            modules[module] = {"file": path.name, "sha256": native.sha256(new / path.name)}
    import mypy.version

    seconds = time.perf_counter() - started
    write_stamp(new, {**base_stamp(sources), "ok": True, "mypy": mypy.version.__version__,
                      "build_seconds": round(seconds, 1), "modules": modules})
    install(new)
    log(f"built {BUILD} in {seconds:.0f}s; `import countclip.counts` now loads it")
    changed = [name for name, data in sources.items() if (PACKAGE_DIR / name).read_bytes() != data]
    if changed:
        log(f"{', '.join(changed)} changed during the build: the build is stale, run again")
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether a current build is there")
    parser.add_argument("--clean", action="store_true", help="remove the build")
    parser.add_argument("--force", action="store_true", help="rebuild even if the build is current")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless a current build is there at the end")
    args = parser.parse_args(argv)
    if args.clean:
        shutil.rmtree(BUILD, ignore_errors=True)
        log(f"removed {BUILD}")
        return 0
    if args.check:
        files, reason, _ = native.current_build(PACKAGE_DIR)
        log(f"current build: {BUILD}" if files else f"no current build: {reason}")
        return 0 if files else 1
    try:
        ok = build(args.force)
    except Exception as error:  # noqa: BLE001  (optional step: never break the set-up)
        log(f"failed unexpectedly: {error!r}; countclip.counts stays the pure-Python module")
        ok = False
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
