"""What a record says about the environment it ran in."""

from __future__ import annotations


def test_git_commit_is_none_inside_an_enclosing_repository(tmp_path):
    """ftbench copied (not cloned) into another project's repository reports no commit, not theirs."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    outer = tmp_path / "other-project"
    outer.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=outer, check=True)
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=outer, check=True)
    copy = outer / "vendor" / "ftbench"
    shutil.copytree(ROOT / "bench", copy / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    probe = "from bench.engine.env import git_commit; print(git_commit())"
    out = subprocess.run([sys.executable, "-c", probe], cwd=copy, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy)})
    assert out.stdout.strip() == "None", out.stderr[-500:]
    mine = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    if (ROOT / ".git").exists():  # this checkout itself still reports its commit
        assert len(mine.stdout.strip().split("+")[0]) == 12, mine.stderr[-500:]


def test_records_kept_in_the_repository_do_not_make_a_run_dirty(tmp_path):
    """Re-running an experiment replaces its committed records run by run: the runs after the first
    still ran on the committed code, so only changes outside experiments/records/ say +dirty."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    repo = tmp_path / "ftbench"
    shutil.copytree(ROOT / "bench", repo / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "experiments" / "records" / "x").mkdir(parents=True)
    (repo / "experiments" / "records" / "x" / "run.json").write_text("{}\n")
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=repo, check=True)
    probe = "from bench.engine.env import git_commit; print(git_commit())"

    def commit() -> str:
        out = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo)})
        return out.stdout.strip()

    (repo / "experiments" / "records" / "x" / "run.json").unlink()
    assert not commit().endswith("+dirty") and len(commit()) == 12
    (repo / "bench" / "__init__.py").write_text("# changed\n")
    assert commit().endswith("+dirty")
