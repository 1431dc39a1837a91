"""Phase 2: apply kernel/series/<base>/series with git am, one commit per patch.

The scratch repository tags the commit after each patch with a hash of the
chain of patches so far. Re-applying a series checks out the longest chain
already there and applies only the rest: git rewrites only files that differ,
so an unchanged patch costs no rebuild and a changed one an incremental one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SeriesError
from harness.kernel.source import Source
from harness.paths import SERIES_DIR, cache_dir
from harness.proc import say

FIXES_MARKER = re.compile(r"^#\s*-+\s*fixes\s*-+\s*$", re.I)
# After the fixes: patches that extend the MUSE protocol rather than fix a bug of v3.
EXTENSIONS_MARKER = re.compile(r"^#\s*-+\s*extensions\s*-+\s*$", re.I)
# A patch's subject, folded over continuation lines, without its [PATCH n/m] tag.
SUBJECT = re.compile(r"^Subject: (?:\[PATCH[^\]]*\] )?(.*(?:\n [^\n]*)*)", re.M)
GIT_ID = ["-c", "user.name=muse-harness", "-c", "user.email=harness@muse-harness.invalid",
          "-c", "core.autocrlf=false", "-c", "gc.auto=0", "-c", "advice.detachedHead=false"]


@dataclass(frozen=True)
class Series:
    base: str
    patches: tuple[Path, ...]
    fixes: int            # how many of the patches (at the end) are ours: fixes, extensions
    extensions: int = 0   # how many of those (at the very end) are extensions, not fixes

    def chain_id(self) -> str:
        """Identifies the exact patch contents, in order."""
        digest = hashlib.sha256(self.base.encode())
        for patch in self.patches:
            digest.update(patch.read_bytes())
        return digest.hexdigest()[:16]


def known_bases() -> list[str]:
    """The bases with a series (kernel/series/<base>/series), oldest first."""
    found = [p.name for p in SERIES_DIR.iterdir() if (p / "series").is_file()] \
        if SERIES_DIR.is_dir() else []
    return sorted(found, key=lambda b: tuple(int(x) if x.isdigit() else 0 for x in b.split(".")))


def read_series(base: str, as_posted: bool = False) -> Series:
    directory = SERIES_DIR / base
    if not (directory / "series").is_file():
        raise SeriesError(f"no series for base {base!r}: {directory / 'series'} is missing "
                          f"(known bases: {', '.join(known_bases()) or 'none'})")
    return _parse(base, directory, as_posted)


def _parse(base: str, directory: Path, as_posted: bool) -> Series:
    """A series file: patch names in order, fix patches after the fixes marker and
    extensions after the extensions marker (which must follow it)."""
    series_file = directory / "series"
    patches: list[Path] = []
    fixes = extensions = 0
    in_fixes = in_extensions = False
    for number, raw in enumerate(series_file.read_text().splitlines(), 1):
        line = raw.strip()
        if FIXES_MARKER.match(line):
            in_fixes = True
            continue
        if EXTENSIONS_MARKER.match(line):
            if not in_fixes:
                raise SeriesError(f"{series_file}:{number}: the extensions marker must "
                                  "follow the fixes marker")
            in_extensions = True
            continue
        if not line or line.startswith("#"):
            continue
        patch = directory / line
        if not patch.is_file():
            raise SeriesError(f"{series_file}:{number}: patch {line} does not exist")
        if in_fixes:
            if as_posted:
                continue
            fixes += 1
            extensions += in_extensions
        patches.append(patch)
    return Series(base, tuple(patches), fixes, extensions)


def load_series(base: str, path: Path, as_posted: bool = False,
                with_fixes: bool = False) -> Series:
    """A revision of the series from elsewhere, on base: an mbox (git format-patch
    --stdout, b4 am) or a directory with a series file. with_fixes puts the base's own
    fix patches on top; a fix that no longer applies is named when the tree is made."""
    read_series(base)                   # the base must be known
    path = path.expanduser().resolve()
    if path.is_dir():
        if not (path / "series").is_file():
            raise SeriesError(f"--series {path}: a directory needs a series file")
        series = _parse(base, path, as_posted)
    elif path.is_file():
        series = Series(base, _split_mbox(path), 0)
    else:
        raise SeriesError(f"--series {path}: no such mbox or directory")
    if not series.patches:
        raise SeriesError(f"--series {path}: no patches in it")
    if with_fixes:
        own = read_series(base)
        fixes = own.patches[len(own.patches) - own.fixes:] if own.fixes else ()
        series = Series(base, (*series.patches, *fixes), series.fixes + len(fixes),
                        own.extensions)
    return series


def _split_mbox(mbox: Path) -> tuple[Path, ...]:
    """The mbox's messages as patch files, once per mbox content (git mailsplit)."""
    key = hashlib.sha256(mbox.read_bytes()).hexdigest()[:16]
    out = cache_dir("series", key)
    if not any(out.glob("*.patch")):
        split = subprocess.run(["git", "mailsplit", "-b", f"-o{out}", str(mbox)],
                               capture_output=True, text=True, check=False)
        if split.returncode != 0:
            raise SeriesError(f"--series {mbox}: not an mbox git can split:\n{split.stderr}")
        for part in sorted(p for p in out.iterdir() if p.name.isdigit()):
            part.rename(out / f"{part.name}.patch")
    return tuple(sorted(out.glob("*.patch")))


def subject_of(patch: Path, text: str | None = None) -> str:
    """A patch's subject on one line, without the [PATCH] tag (its file name if none)."""
    match = SUBJECT.search(patch.read_text(errors="replace") if text is None else text)
    return " ".join(match.group(1).split()) if match else patch.stem


def subjects(series: Series) -> list[str]:
    """Each patch's subject, as reports name the series."""
    return [subject_of(patch) for patch in series.patches]


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["git", *GIT_ID, "-C", str(repo), *args],
                            capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise SeriesError(f"git {' '.join(args)} in {repo} failed:\n{result.stderr[-3000:]}")
    return result


def _init_repo(repo: Path) -> None:
    say(f"recording pristine source as a git commit in {repo} (once)")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A", "-f")
    _git(repo, "commit", "-q", "--no-verify", "-m", "pristine")
    _git(repo, "tag", "-f", "harness/pristine")


def scratch_repo(source: Source) -> Path:
    """A git repository holding source as its pristine commit, ours to modify."""
    if not source.user:
        repo = source.path  # our own extraction in the cache
        if not (repo / ".git").is_dir():
            _init_repo(repo)
        return repo
    key = hashlib.sha256(str(source.path).encode()).hexdigest()[:12]
    repo = cache_dir("trees") / f"user-{key}"
    say(f"copying {source.path} to {repo} (your tree is never modified)")
    subprocess.run(["rsync", "-a", "--delete", "--exclude=/.git", "--exclude=/.git/",
                    f"{source.path}/", f"{repo}/"], check=True)
    if not (repo / ".git").is_dir():
        _init_repo(repo)
    elif _git(repo, "status", "--porcelain").stdout.strip():
        _git(repo, "add", "-A", "-f")
        _git(repo, "commit", "-q", "--no-verify", "-m", "pristine (refreshed)")
        _git(repo, "tag", "-f", "harness/pristine")
    return repo


def _failing_hunk(patch: Path, path: str, line: int) -> str:
    """The hunk of patch that touches path at old line number line."""
    text = patch.read_text(errors="replace").splitlines()
    in_file = False
    hunk: list[str] = []
    for row in text:
        if row.startswith("diff --git "):
            in_file = row.endswith(f" b/{path}")
            if hunk:
                break
            continue
        if not in_file:
            continue
        if row.startswith("@@"):
            if hunk:
                break
            match = re.match(r"@@ -(\d+)", row)
            if match and int(match.group(1)) == line:
                hunk.append(row)
        elif hunk:
            if row == "-- ":
                break
            hunk.append(row)
    return "\n".join(hunk)


def _explain_failure(repo: Path, patch: Path) -> str:
    check = subprocess.run(["git", "-C", str(repo), "apply", "--check", "-v", str(patch)],
                           capture_output=True, text=True, check=False)
    lines = [f"patch {patch.name} does not apply"]
    match = re.search(r"error: patch failed: (.+):(\d+)", check.stderr)
    if match:
        lines.append(f"  first failing hunk: {match.group(1)} at line {match.group(2)}")
        hunk = _failing_hunk(patch, match.group(1), int(match.group(2)))
        if hunk:
            lines.append("  " + hunk.replace("\n", "\n  "))
    missing = re.findall(r"error: (.+): No such file or directory", check.stderr)
    lines.extend(f"  file missing in the tree: {name}" for name in missing)
    if len(lines) == 1:
        lines.append(check.stderr.strip()[-2000:])
    return "\n".join(lines)


def apply_series(source: Source, series: Series) -> Path:
    """A tree with the series applied; returns its path. The caller holds the build lock."""
    if source.has_muse:
        say(f"{source.path} already carries fs/fuse/muse.c: building it as it is")
        return source.path
    repo = scratch_repo(source)
    if (repo / ".git" / "rebase-apply").exists():
        _git(repo, "am", "--abort", check=False)
    pristine = _git(repo, "rev-parse", "harness/pristine").stdout.strip()
    tags = _chain_tags(repo, series)
    existing = set(_git(repo, "tag", "-l", "harness/*").stdout.split())
    done = 0
    while done < len(tags) and tags[done] in existing:
        done += 1
    before = _git(repo, "rev-parse", "HEAD").stdout.strip()
    saved = _mtimes(repo, _changed(repo, pristine, before))
    _git(repo, "checkout", "-q", "-f", "--detach",
         tags[done - 1] if done else "harness/pristine")
    if done < len(tags):
        say(f"applying {len(tags) - done} of {len(tags)} patches with git am")
    try:
        _apply(repo, list(series.patches[done:]), tags[done:], source)
    finally:
        _restore_mtimes(repo, saved, _changed(repo, before, "HEAD"))
    return repo


BLAME_HEADER = re.compile(r"^([0-9a-f]{40}) \d+ (\d+)(?: \d+)?$", re.M)


def added_lines(source: Source, series: Series,
                files: list[str]) -> dict[str, dict[str, list[int]]]:
    """patch name -> file -> the lines of the series' tip that the patch wrote (git blame
    in the scratch repository). The caller holds the build lock."""
    repo = apply_series(source, series)
    commit_of = {}
    for patch, tag in zip(series.patches, _chain_tags(repo, series), strict=True):
        commit_of[_git(repo, "rev-parse", f"{tag}^{{commit}}").stdout.strip()] = patch.name
    found: dict[str, dict[str, list[int]]] = {p.name: {} for p in series.patches}
    for name in files:
        if not (repo / name).is_file():
            continue
        blame = _git(repo, "blame", "--porcelain", "HEAD", "--", name).stdout
        for match in BLAME_HEADER.finditer(blame):
            owner = commit_of.get(match.group(1))
            if owner is not None:
                found[owner].setdefault(name, []).append(int(match.group(2)))
    return found


def _chain_tags(repo: Path, series: Series) -> list[str]:
    pristine = _git(repo, "rev-parse", "harness/pristine").stdout.strip()
    chain, tags = pristine, []
    for patch in series.patches:
        chain = hashlib.sha256(chain.encode() + patch.read_bytes()).hexdigest()[:20]
        tags.append(f"harness/{chain}")
    return tags


def _apply(repo: Path, patches: list[Path], tags: list[str], source: Source) -> None:
    """git am the patches in one run (a process per patch costs seconds over a
    series), then tag the commit after each; a failing patch is named with its hunk."""
    if not patches:
        return
    base = _git(repo, "rev-parse", "HEAD").stdout.strip()
    result = _git(repo, "am", "-q", "--whitespace=nowarn", *map(str, patches), check=False)
    applied = _git(repo, "rev-list", "--reverse", f"{base}..HEAD").stdout.split()
    if len(applied) > len(patches):
        raise SeriesError(f"git am made {len(applied)} commits from {len(patches)} patches")
    refs = "".join(f"update refs/tags/{tag} {commit}\n" for tag, commit in
                   zip(tags[: len(applied)], applied, strict=True))
    if refs:
        subprocess.run(["git", "-C", str(repo), "update-ref", "--stdin"], input=refs,
                       text=True, capture_output=True, check=True)
    if result.returncode != 0 or len(applied) < len(patches):
        failing = patches[len(applied)]
        message = _explain_failure(repo, failing)
        # --quit keeps HEAD at the last patch that applied, like a per-patch am would.
        _git(repo, "am", "--quit", check=False)
        _git(repo, "checkout", "-q", "-f", "HEAD")
        raise SeriesError(f"{message}\n(base tree: {source.origin})")


def _changed(repo: Path, old: str, new: str) -> set[str]:
    """Paths whose content differs between two commits."""
    out = _git(repo, "diff", "--name-only", "-z", "--no-renames", old, new).stdout
    return {path for path in out.split("\0") if path}


def _mtimes(repo: Path, paths: set[str]) -> dict[str, int]:
    found = {}
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            found[path] = os.stat(repo / path).st_mtime_ns
    return found


def _restore_mtimes(repo: Path, saved: dict[str, int], changed: set[str]) -> None:
    """Going back along the chain and re-applying rewrites files that end up as they
    were: give those their old mtimes back, so make rebuilds only what really changed."""
    for path, mtime in saved.items():
        if path not in changed:
            with contextlib.suppress(FileNotFoundError):
                os.utime(repo / path, ns=(mtime, mtime))


def revert_patch(source: Source, series: Series, index: int, out: Path) -> Path | None:
    """A patch that reverts patch index (1-based) on top of the whole series, written to
    out; None when it does not revert cleanly there. The caller holds the build lock."""
    repo = apply_series(source, series)
    head = _git(repo, "rev-parse", "HEAD").stdout.strip()
    culprit = _git(repo, "rev-parse", f"HEAD~{len(series.patches) - index}").stdout.strip()
    try:
        if _git(repo, "revert", "--no-edit", culprit, check=False).returncode != 0:
            _git(repo, "revert", "--abort", check=False)
            return None
        out.write_text(_git(repo, "format-patch", "-1", "--stdout", "HEAD").stdout)
        return out
    finally:
        _git(repo, "checkout", "-q", "-f", "--detach", head)
