"""Build the count core's two native forms: core.py compiled by mypyc, and _fastcount.c by gcc.

    training/.venv/bin/python -m countclip.counting.build              # both, each if its source changed
    training/.venv/bin/python -m countclip.counting.build mypyc        # only the compiled core.py
    training/.venv/bin/python -m countclip.counting.build c            # only the C port, for mining
    training/.venv/bin/python -m countclip.counting.build --check      # say what the count core imports
    training/.venv/bin/python -m countclip.counting.build mypyc --clean   # remove a build

Both are optional: `make setup` runs this (`make native`: one target per form), and without a
build (no mypy, no C compiler, a failed compile) the pure-Python core gives the same results.
It exits 0 whatever happens (1 with --strict when a form asked for has no current build at
the end), so it never fails the set-up; it says why a form was not built.

**mypyc** (`find_count` about 1.7x faster). The build goes to `counting/_mypyc/` (git-ignored):
the extension modules and `build.json` with the SHA-256 of the sources compiled and of each
file written. `_native` imports the compiled module only while core.py and lexicon.py still
hash to what was compiled, so an edited core.py is never shadowed by an older build (it warns
and imports the source instead). Set COUNTCLIP_PURE_PYTHON=1 to import the source regardless.
Steps: copy the sources to a temporary directory, compile them there with `python -m mypyc`
(needs the `mypy` package, from the dev extras, and a C compiler), check in a fresh
interpreter that the compiled module gives the pure module's results on fixed and CountBench
captions, then swap the new `_mypyc/` in by renames (a running process keeps its old files).

**C** (`_fastcount.c`: the count core's decision, about 20x faster, for `countclip mine`). The
source's SHA-256 is compiled in, so `fastcount` refuses a build of an older source. The
library goes to a temporary name first and is moved into place with os.replace: a running
miner keeps its old file.
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
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

from countclip.counting import _native as native

PACKAGE_DIR = native.PACKAGE_DIR  # countclip/counting/
PACKAGE_ROOT = PACKAGE_DIR.parent.parent  # training/: what holds the countclip package
REPO = PACKAGE_ROOT.parent
BUILD = PACKAGE_DIR / native.BUILD_DIR
COMPILE_TIMEOUT_S = 900

# Run in a fresh interpreter inside the temporary build: the compiled module (found before
# core.py there, as extension modules come first) against the pure one on fixed captions
# and, when ../shared is there, CountBench's.
VERIFY = textwrap.dedent("""
    import importlib.machinery, importlib.util, json, pathlib, random, sys
    import countclip.counting.core as compiled
    assert compiled.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), compiled.__file__
    spec = importlib.util.spec_from_file_location("pure_counts", "countclip/counting/core.py")
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
    print(f"build: {message}", flush=True)


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
    log("countclip.counting.core stays the pure-Python module (same results, about 1.7x slower)")


def compile_in(tmp: Path, sources: dict[str, bytes]) -> dict[str, Path]:
    """Compile copies of the sources in `tmp`; module name -> extension file."""
    package = tmp / "countclip" / "counting"
    package.mkdir(parents=True)
    for directory in (package.parent, package):
        (directory / "__init__.py").write_text("")  # no finder: the extension module comes first
    for name, data in sources.items():
        (package / name).write_bytes(data)
    env = {**os.environ, "MYPYC_OPT_LEVEL": "3", "MYPY_CACHE_DIR": str(tmp / ".mypy_cache")}
    proc = subprocess.run([sys.executable, "-m", "mypyc", f"countclip/counting/{native.MODULE}.py"], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"mypyc failed (exit {proc.returncode}):\n{tail}")
    suffix = native.extension_suffix()
    files = {path.name[:-len(suffix)]: path for path in package.iterdir() if path.name.endswith(suffix)}
    stray = [str(p.relative_to(tmp)) for d in (tmp, package.parent) for p in d.iterdir() if p.name.endswith(suffix)]
    if native.MODULE not in files or stray:
        raise RuntimeError(f"unexpected mypyc output: {sorted(files)} in countclip/counting/, {stray} outside")
    return files


def build_mypyc(force: bool) -> bool:
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
    log(f"compiling countclip/counting/{native.MODULE}.py with mypyc ({reason.splitlines()[0]}) ...")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="countclip-mypyc-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            compiled = compile_in(tmp, sources)
            countbench = REPO.parent / "shared" / "countbench" / "CountBench.json"
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
    log(f"built {BUILD} in {seconds:.0f}s; `import countclip.counting.core` now loads it")
    changed = [name for name, data in sources.items() if (PACKAGE_DIR / name).read_bytes() != data]
    if changed:
        log(f"{', '.join(changed)} changed during the build: the build is stale, run again")
        return False
    return True


# ----------------------------------------------------------------------------- the C port

C_SOURCE = PACKAGE_DIR / "_fastcount.c"
C_TARGET = PACKAGE_DIR / ("_fastcount" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
CFLAGS = ["-O3", "-fPIC", "-shared", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror=implicit-function-declaration"]


def c_current() -> tuple[bool, str]:
    """Whether `fastcount.load()` would use the C module, and why not (asked in a fresh process:
    this one may hold an older build)."""
    code = ("import warnings, countclip.counting.fastcount as f; warnings.simplefilter('ignore'); "
            "c, why = f.load(); print('yes' if c else why)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE_ROOT, env={**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)})
    lines = out.stdout.strip().splitlines() or out.stderr.strip().splitlines() or ["no answer"]
    answer = lines[-1]
    return answer == "yes", answer


def compile_c() -> bool:
    source = C_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    include = sysconfig.get_paths()["include"]
    with tempfile.TemporaryDirectory(dir=PACKAGE_DIR, prefix=".fastcount-build-") as tmp:
        out = Path(tmp) / C_TARGET.name
        command = [*compiler, *CFLAGS, f"-I{include}", f'-DSOURCE_SHA256="{digest}"', str(C_SOURCE), "-o", str(out)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as error:
            log(f"C port not built ({error}); countclip mine uses the Python count core")
            return False
        if result.returncode != 0:
            log(f"C port: compile failed; countclip mine uses the Python count core:\n{result.stderr[-4000:]}")
            return False
        if result.stderr.strip():
            log(f"C port: compiler warnings:\n{result.stderr[-4000:]}")
        os.replace(out, C_TARGET)
    log(f"built {C_TARGET.relative_to(PACKAGE_ROOT)} from _fastcount.c {digest[:12]}")
    return True


def build_c(force: bool) -> bool:
    ok, why = c_current()
    if force or not ok:
        compile_c()
        ok, why = c_current()
    log("countclip mine uses the C count core" if ok else f"countclip mine uses the Python count core ({why})")
    return ok


# ----------------------------------------------------------------------------- command line

FORMS = ("mypyc", "c")


def check(form: str) -> bool:
    if form == "mypyc":
        files, reason, _ = native.current_build(PACKAGE_DIR)
        log(f"current build: {BUILD}" if files else f"no current build of core.py: {reason}")
        return files is not None
    ok, why = c_current()
    log("countclip mine uses the C count core" if ok else f"countclip mine uses the Python count core ({why})")
    return ok


def clean(form: str) -> None:
    if form == "mypyc":
        shutil.rmtree(BUILD, ignore_errors=True)
        log(f"removed {BUILD}")
    else:
        C_TARGET.unlink(missing_ok=True)
        log(f"removed {C_TARGET}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m countclip.counting.build", description=__doc__.splitlines()[0])
    parser.add_argument("form", nargs="?", choices=[*FORMS, "all"], default="all",
                        help="mypyc: the compiled core.py; c: the C port for mining; all: both (default)")
    parser.add_argument("--check", action="store_true", help="only say whether a current build is there")
    parser.add_argument("--clean", action="store_true", help="remove the build")
    parser.add_argument("--force", action="store_true", help="rebuild even if the build is current")
    parser.add_argument("--strict", action="store_true", help="exit 1 unless a current build is there at the end")
    args = parser.parse_args(argv)
    forms = FORMS if args.form == "all" else (args.form,)
    if args.clean:
        for form in forms:
            clean(form)
        return 0
    if args.check:
        return 0 if all([check(form) for form in forms]) else 1
    ok = True
    for form in forms:
        try:
            ok = (build_mypyc(args.force) if form == "mypyc" else build_c(args.force)) and ok
        except Exception as error:  # noqa: BLE001  (optional step: never break the set-up)
            log(f"{form}: failed unexpectedly: {error!r}; the count core stays the pure-Python module")
            ok = False
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
