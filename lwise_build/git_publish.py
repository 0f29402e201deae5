"""``lwise-build publish --to <git remote>``: the Hub folder as one git commit plus tag ``v<version>``.

Hub repositories are git repositories, so any git remote (a bare repository path, ``file://``,
``ssh://``, ``https://``) can hold the same dataset. The commit is deterministic (fixed author,
dates from the release date), a tag is never moved, and re-publishing identical content is a
no-op. The folder is committed straight from where it is (``--work-tree``), never copied.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

AUTHOR = ("lwise-build", "lwise-build@users.noreply.huggingface.co")


def redact(text: str) -> str:
    """Remove credentials from URLs (``https://user:token@host`` -> ``https://***@host``)."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", text)


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
        cmd = ["git", "-c", "core.autocrlf=false", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
               f"--git-dir={self.git_dir}", f"--work-tree={self.work_tree}", *args]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=False,
                                 cwd=self.work_tree)
        except OSError as exc:
            raise UserError(f"publish --to: cannot run git ({exc})") from None
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
    try:
        subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise UserError(f"publish --to: cannot run git init ({exc})") from None
    return git_dir


def remote_tag(remote: str, tag: str) -> str | None:
    """The commit ``refs/tags/<tag>`` points at on ``remote`` (None when absent)."""
    with tempfile.TemporaryDirectory(prefix="lwise-git-") as tmp:
        git = _Git(_init(Path(tmp)), Path(tmp), remote, "")
        return git.remote_ref(f"refs/tags/{tag}")


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
            if git("rev-parse", f"{tagged}^{{tree}}") == tree:
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
