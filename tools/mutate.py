#!/usr/bin/env python
"""Mutation testing (mutmut 2.x, requirements-dev.txt) of the code that produces every reported number:
``python tools/mutate.py [TARGET ...]`` (``make mutate``). Not part of CI: it takes tens of minutes.

Targets and the fast tests that must kill their mutants:

=========  ======================================  =====================================================
metrics    lotr_gluon/metrics.py                   tests/test_metrics.py -k "not shape_spread" (no mxnet)
losses     lotr_gluon/losses.py                    tests/test_losses.py
evaluate   lotr_gluon/evaluate.py                  tests/test_evaluate.py
codec      heatmap_baseline/codec.py               tests/test_heatmap_codec.py
trainer    lotr_gluon/trainer.py (checkpoint code  tests/test_reliability.py tests/test_train_e2e.py
           only: ``save_checkpoint``, ``resume``)  -k resume
=========  ======================================  =====================================================

mutmut 2 edits the file it mutates in place, so this script runs it on a copy of the working tree
(``git ls-files``: tracked and untracked-not-ignored files) under ``--workdir`` (default
``$TMPDIR/lotr_mutate``): the checkout is never modified, and the copy's packages shadow the editable install
because the tests run with the copy as the current directory. Each target's results (``mutmut results``,
and the diff of every surviving mutant) are printed and written to ``<workdir>/<target>.txt``.

Options: ``--sample N`` checks N randomly chosen mutants of each target (``--seed``) instead of all;
``--rerun`` re-tests only the survivors of the last run in ``--workdir`` against the current ``tests/``;
``--mutmut PATH`` the mutmut executable (default: next to this Python, else on PATH, or ``$MUTMUT``).
The shared data folder is passed to the copy's tests with ``LOTR_SHARED_DIR`` (default ``<repo>/../shared``).
"""
import argparse
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TARGETS = {
    "metrics": ("lotr_gluon/metrics.py", ["tests/test_metrics.py", "-k", "not shape_spread"], None),
    "losses": ("lotr_gluon/losses.py", ["tests/test_losses.py"], None),
    "evaluate": ("lotr_gluon/evaluate.py", ["tests/test_evaluate.py"], None),
    "codec": ("heatmap_baseline/codec.py", ["tests/test_heatmap_codec.py"], None),
    "trainer": ("lotr_gluon/trainer.py", ["tests/test_reliability.py", "tests/test_train_e2e.py", "-k", "resume"],
                ("save_checkpoint", "resume")),
}


def find_mutmut(explicit=None):
    for cand in (explicit, os.environ.get("MUTMUT"), os.path.join(os.path.dirname(sys.executable), "mutmut"),
                 shutil.which("mutmut")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    sys.exit("mutmut not found: pip install -r requirements-dev.txt (mutmut 2.x), or pass --mutmut PATH")


def copy_tree(dst):
    """Copy the working tree's tracked and untracked-not-ignored files to ``dst`` (replaced, with any mutmut
    cache in it: an interrupted run can leave it inconsistent)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    if os.path.isdir(dst):
        shutil.rmtree(dst)
    for f in filter(None, files):
        src = os.path.join(ROOT, f)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, f))


def function_patch(cwd, module, names):
    """A unified diff that 'adds' the lines of the definitions ``names`` (functions or methods) of ``module``
    (relative to ``cwd``), so that ``mutmut run --use-patch-file`` mutates only those lines."""
    lines = open(os.path.join(cwd, module)).read().splitlines()
    out = ["--- %s" % module, "+++ %s" % module]
    for name in names:
        start = next(i for i, l in enumerate(lines) if re.match(r"\s*def %s\(" % name, l))
        indent = len(lines[start]) - len(lines[start].lstrip())
        end = start + 1
        while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
            end += 1
        while not lines[end - 1].strip():
            end -= 1
        out.append("@@ -%d,0 +%d,%d @@" % (start, start + 1, end - start))
        out += ["+" + l for l in lines[start:end]]
    return "\n".join(out) + "\n"


def mutant_ids(mutmut, cwd, env):
    """All mutant ids in mutmut's cache (after a run), from ``mutmut result-ids`` of every status."""
    ids = set()
    for status in ("killed", "survived", "timeout", "suspicious", "untested", "skipped"):
        r = subprocess.run([mutmut, "result-ids", status], cwd=cwd, env=env, capture_output=True, text=True)
        ids |= {int(t) for t in r.stdout.split() if t.isdigit()}
    return sorted(ids)


def run_target(name, mutmut, workdir, env, sample=None, seed=0, rerun=False):
    module, tests, functions = TARGETS[name]
    cwd = os.path.join(workdir, name)
    if rerun:  # new tests against the survivors of the last run: refresh tests/ only, keep module and cache
        shutil.rmtree(os.path.join(cwd, "tests"))
        shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(cwd, "tests"),
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:
        copy_tree(cwd)
    runner = "%s -m pytest -x -q -p no:cacheprovider -p no:warnings %s" % (
        sys.executable, " ".join("'%s'" % t if " " in t else t for t in tests))
    cmd = [mutmut, "run", "--paths-to-mutate", module, "--tests-dir", "tests", "--runner", runner,
           "--no-progress", "--simple-output"]
    if functions:
        patch = os.path.join(cwd, "mutate_%s.patch" % name)
        with open(patch, "w") as f:
            f.write(function_patch(cwd, module, functions))
        cmd += ["--use-patch-file", patch]
    t0 = time.time()
    if rerun:
        before = subprocess.run([mutmut, "result-ids", "survived"], cwd=cwd, env=env, capture_output=True,
                                text=True).stdout.split()
        print("%s: re-testing the %d survivors of the last run: %s" % (name, len(before), " ".join(before)),
              flush=True)
        for sid in before:
            subprocess.run(cmd + [sid], cwd=cwd, env=env, capture_output=True, text=True)
    elif sample:
        # mutmut has no sampling. List every mutant by a run whose runner always passes ("true": every mutant
        # 'survives' at once), then, in mutmut's cache, mark the chosen mutants untested and the others
        # skipped, forget the baseline time of that run, and run mutmut for real: it tests only the chosen.
        fast = list(cmd)
        fast[fast.index("--runner") + 1] = "true"
        subprocess.run(fast, cwd=cwd, env=env, capture_output=True, text=True)
        db = sqlite3.connect(os.path.join(cwd, ".mutmut-cache"))
        ids = [r[0] for r in db.execute("select id from Mutant order by id")]
        chosen = sorted(random.Random(seed).sample(ids, min(sample, len(ids))))
        db.execute("update Mutant set status = 'skipped'")
        db.executemany("update Mutant set status = 'untested' where id = ?", [(i,) for i in chosen])
        db.execute("delete from MiscData where key in ('baseline_time_elapsed', 'hash_of_tests')")
        db.commit()
        db.close()
        print("%s: %d mutants, checking a random sample of %d (seed %d): %s"
              % (name, len(ids), len(chosen), seed, chosen), flush=True)
    if not rerun:
        subprocess.run(cmd, cwd=cwd, env=env)
    res = subprocess.run([mutmut, "results"], cwd=cwd, env=env, capture_output=True, text=True).stdout
    survivors = subprocess.run([mutmut, "result-ids", "survived"], cwd=cwd, env=env, capture_output=True,
                               text=True).stdout.split()
    report = ["# %s (%s; tests: %s) %.0f s" % (name, module, " ".join(tests), time.time() - t0), res]
    for sid in survivors:
        if sid.isdigit():
            report.append(subprocess.run([mutmut, "show", sid], cwd=cwd, env=env, capture_output=True,
                                         text=True).stdout)
    text = "\n".join(report)
    with open(os.path.join(workdir, name + ".txt"), "w") as f:
        f.write(text)
    print(text, flush=True)
    return len([s for s in survivors if s.isdigit()])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help="some of: %s (default: all)" % ", ".join(TARGETS))
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "lotr_mutate"))
    ap.add_argument("--mutmut", default=None)
    ap.add_argument("--sample", type=int, default=None, help="check N random mutants per target")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rerun", action="store_true",
                    help="re-test only the last run's survivors (in --workdir) with the current tests/")
    args = ap.parse_args(argv)
    bad = [t for t in args.targets if t not in TARGETS]
    if bad:
        ap.error("unknown target(s) %s; valid: %s" % (", ".join(bad), ", ".join(TARGETS)))
    mutmut = find_mutmut(args.mutmut)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
               LOTR_SHARED_DIR=os.environ.get("LOTR_SHARED_DIR", os.path.join(os.path.dirname(ROOT), "shared")))
    os.makedirs(args.workdir, exist_ok=True)
    total = 0
    for name in args.targets or list(TARGETS):
        total += run_target(name, mutmut, os.path.abspath(args.workdir), env, args.sample, args.seed, args.rerun)
    print("surviving mutants: %d (reports in %s)" % (total, args.workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
