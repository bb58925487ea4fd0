"""Node packages the tests run (axe-core, Zoom's Rivet), installed with `npm ci` from a pinned package-lock.json
into var/cache/ the first time, keyed by the lock file's hash: one install for parallel runs, node_modules never
committed."""

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "cache"
MANIFEST = ("package.json", "package-lock.json")


@contextlib.contextmanager
def _locked(path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def npm_installed(sources, name, installed_file, also_copy=()):
    """The directory holding `sources`' package.json, its lock file and their node_modules (and the files of
    `sources` named in `also_copy`, copied afresh); `installed_file` (under it) exists once the install finished."""
    npm = shutil.which("npm")
    assert npm, f"{name} needs npm on PATH (apt-get install npm)"
    manifest = b"".join((sources / file).read_bytes() for file in MANIFEST)
    target = CACHE / f"{name}-{hashlib.sha256(manifest).hexdigest()[:16]}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with _locked(CACHE / f"{name}.lock"):
        if not (target / installed_file).exists():
            staging = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=CACHE))
            for file in MANIFEST:
                shutil.copy(sources / file, staging / file)
            installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=staging, capture_output=True,
                                       text=True, timeout=600)
            assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}\n{installed.stderr}"
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        for file in also_copy:
            shutil.copy(sources / file, target / file)
    return target
