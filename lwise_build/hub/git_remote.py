"""``lwise-build publish --to <git remote>``: the Hub folder as one git commit plus tag ``v<version>``.

Hub repositories are git repositories, so any git remote (a bare repository path, ``file://``,
``ssh://``, ``https://``) can hold the same dataset. The commit is deterministic (fixed author,
dates from the release date), a tag is never moved, and re-publishing identical content is a
no-op. The folder is committed straight from where it is (``--work-tree``), never copied.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .remote import redact

AUTHOR = ("lwise-build", "lwise-build@users.noreply.huggingface.co")


def run_git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess | None:
    """Run git (output captured); None when git itself cannot run."""
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, env=env, check=False, cwd=cwd)
    except OSError:
        return None


def git_output(*args: str) -> str | None:
    """Stripped stdout of a git command in the project, or None when it fails (or no git)."""
    res = run_git(*args)
    return res.stdout.strip() if res is not None and res.returncode == 0 else None


@dataclass
class GitResult:
    commit: str
    created: bool  # False: the tag already pointed at identical content


class _Git:
    """git with its own throwaway repository and the Hub folder as the work tree."""

    def __init__(self, git_dir: Path, work_tree: Path, remote: str, date: str):
        self.git_dir, self.work_tree, self.remote = git_dir, work_tree, remote
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": AUTHOR[0],
                    "GIT_AUTHOR_EMAIL": AUTHOR[1], "GIT_COMMITTER_NAME": AUTHOR[0],
                    "GIT_COMMITTER_EMAIL": AUTHOR[1], "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}

    def __call__(self, *args: str, check: bool = True) -> str:
        res = run_git("-c", "core.autocrlf=false", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
                      f"--git-dir={self.git_dir}", f"--work-tree={self.work_tree}", *args,
                      cwd=self.work_tree, env=self.env)
        if res is None:
            raise UserError("publish --to: cannot run git (is it installed?)")
        if check and res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["failed"])[-1]
            raise UserError(f"publish --to {redact(self.remote)}: git {args[0]} failed: {redact(last)}")
        return res.stdout.strip() if res.returncode == 0 else ""

    def remote_ref(self, ref: str) -> str | None:
        """The commit a remote ref points at (tags peeled), or None."""
        out = self("ls-remote", self.remote, ref, f"{ref}^{{}}")
        found = dict(reversed(line.split("\t", 1)) for line in out.splitlines() if "\t" in line)
        return found.get(f"{ref}^{{}}") or found.get(ref)

    def fetch(self, sha: str) -> None:
        self("fetch", "-q", "--no-tags", "--depth=1", self.remote, sha)


def _init(tmp: Path) -> Path:
    git_dir = tmp / "repo.git"
    res = run_git("init", "-q", "--bare", str(git_dir))
    if res is None or res.returncode != 0:
        raise UserError(f"publish --to: cannot run git init ({res.stderr.strip() if res else 'no git'})")
    return git_dir


def _content(git: _Git, treeish: str) -> list[str]:
    """The files of a tree and their blob ids, except ``provenance.json`` (whose git state is
    not content: re-publishing the same files after another commit is a no-op)."""
    return [line for line in git("ls-tree", "-r", treeish).splitlines() if not line.endswith("\tprovenance.json")]


def publish_folder(folder: Path, remote: str, tag: str, *, message: str, date: str | None) -> GitResult:
    """Commit ``folder`` on top of the remote's ``main`` and push it with the tag ``tag``.

    Refuses when ``tag`` exists on different content; identical content is a no-op.
    """
    stamp = f"{date or '1970-01-01'}T00:00:00+0000"
    with tempfile.TemporaryDirectory(prefix="lwise-git-") as tmp:
        git = _Git(_init(Path(tmp)), Path(folder).resolve(), remote, stamp)
        git("add", "--all", "--force", ".")
        tree = git("write-tree")
        tagged = git.remote_ref(f"refs/tags/{tag}")
        if tagged is not None:
            git.fetch(tagged)
            if _content(git, tagged) == _content(git, tree):
                return GitResult(tagged, created=False)
            raise UserError(f"publish --to {redact(remote)}: tag {tag} already exists on different content "
                            f"({tagged[:12]}); tags are never moved, publish a new version")
        parent = git.remote_ref("refs/heads/main")
        commit = None
        if parent is not None:
            git.fetch(parent)
            if git("rev-parse", f"{parent}^{{tree}}") == tree:
                commit = parent
        if commit is None:
            commit = git("commit-tree", tree, "-m", message, *(["-p", parent] if parent else []))
        git("push", "-q", remote, f"{commit}:refs/heads/main", f"{commit}:refs/tags/{tag}")
        return GitResult(commit, created=True)
