#!/usr/bin/env python
"""Compile `countclip/_fastcount.c` (the count core's decision in C, for mining).

    training/.venv/bin/python training/build_fastcount.py           # build if the source changed
    training/.venv/bin/python training/build_fastcount.py --check   # say whether miners get it

Optional, like build_native.py: `make native` runs it, it never fails the set-up (exit 0;
1 with --strict when no current build is left), and without a build `countclip mine` uses
the Python count core, with the same results. The source's SHA-256 is compiled in, so
`countclip.fastcount` refuses a build of an older source. The library goes to a temporary
name first and is moved into place with os.replace: a running miner keeps its old file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent / "countclip"
SOURCE = PACKAGE_DIR / "_fastcount.c"
TARGET = PACKAGE_DIR / ("_fastcount" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
CFLAGS = ["-O3", "-fPIC", "-shared", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror=implicit-function-declaration"]


def log(message: str) -> None:
    print(f"build_fastcount: {message}", flush=True)


def current() -> tuple[bool, str]:
    """Whether `countclip.fastcount.load()` would use the C module, and why not."""
    code = ("import warnings, countclip.fastcount as f; warnings.simplefilter('ignore'); "
            "c, why = f.load(); print('yes' if c else why)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE_DIR.parent, env={**os.environ, "PYTHONPATH": str(PACKAGE_DIR.parent)})
    lines = out.stdout.strip().splitlines() or out.stderr.strip().splitlines() or ["no answer"]
    answer = lines[-1]
    return answer == "yes", answer


def build() -> bool:
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    include = sysconfig.get_paths()["include"]
    with tempfile.TemporaryDirectory(dir=PACKAGE_DIR, prefix=".fastcount-build-") as tmp:
        out = Path(tmp) / TARGET.name
        command = [*compiler, *CFLAGS, f"-I{include}", f'-DSOURCE_SHA256="{digest}"', str(SOURCE), "-o", str(out)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as error:
            log(f"not built ({error}); countclip mine uses the Python count core")
            return False
        if result.returncode != 0:
            log(f"compile failed; countclip mine uses the Python count core:\n{result.stderr[-4000:]}")
            return False
        if result.stderr.strip():
            log(f"compiler warnings:\n{result.stderr[-4000:]}")
        os.replace(out, TARGET)
    log(f"built {TARGET.relative_to(PACKAGE_DIR.parent)} from _fastcount.c {digest[:12]}")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say whether miners get the C module")
    parser.add_argument("--strict", action="store_true", help="exit 1 when no usable build is left")
    args = parser.parse_args()
    ok, why = current()
    if not args.check and not ok:
        build()
        ok, why = current()
    log("countclip mine uses the C count core" if ok else f"countclip mine uses the Python count core ({why})")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
