#!/usr/bin/env python
"""Mutation testing: inject realistic one-line bugs into neurosim and check that the tests fail.

A test that cannot fail is worth nothing. Each mutant of the catalogue (``scripts/mutants/``: an id,
a file, an exact snippet of its source, the replacement, a description and the tests to run first)
is applied to a scratch copy of the repository -- never to the working tree -- and the tests are
run there:

1. the mutant's mapped tests (``pytest -x -q``); if one fails, the mutant is *killed*;
2. if it survives them, the full suite (``pytest -x -q``); if that passes too, the mutant
   *survived*: no test can tell the bug from the real code. ``--full`` sends every mutant straight
   to the full suite.

Statuses: ``killed``, ``survived``, ``timeout`` (the run exceeded ``--timeout``; counted as
detected, the usual convention, since a bug that hangs the suite does not go unnoticed) and
``error`` (the mutant could not be run: the guard below fired, or pytest could not collect the
mapped tests). The score is ``(killed + timeout) / (mutants - errors)``.

Isolation:

- the scratch copy leaves out ``.venv``, ``.git``, ``__pycache__``, test caches and
  ``benchmarks/results``; pytest runs in it with the same interpreter, ``PYTHONPATH`` pointing at
  the copy first, ``-p no:cacheprovider`` and a small guard plugin that checks, inside the pytest
  process, that ``neurosim`` is imported from the copy (not from the editable install of the working
  tree) and stops the run with an error otherwise;
- numba's on-disk cache never leaks between mutants: every run gets its own ``NUMBA_CACHE_DIR``.
  It is seeded from a cache built by an unmutated baseline run, leaving out every cached kernel
  module that is, or imports (transitively), the mutated file: numba checks a cached function
  against its own source only, not against the functions it calls from other modules.
  ``--cold-cache`` starts every run from an empty cache instead (slower, nothing shared).
- a baseline run of the unmutated copy must pass the mapped tests (and, the first time a mutant
  needs it, the full suite) before any result counts; otherwise the script stops (exit 3). A
  baseline that fails is tried once more and a pass then reported as a flaky test.

Usage::

    .venv/bin/python scripts/mutation_test.py                      # the whole catalogue
    .venv/bin/python scripts/mutation_test.py --only optim-adam-t-stuck,il-stale-error-1
    .venv/bin/python scripts/mutation_test.py --module neurosim/optim.py --out mutation.json
    .venv/bin/python scripts/mutation_test.py --list               # check and list the catalogue

Exit codes: 0 done (1 with ``--fail-under`` when the score is lower); 2 bad arguments, an unknown
mutant id or module, or a catalogue entry whose snippet is not found exactly once; 3 the baseline
failed; 130 interrupted (the pytest runs in progress are stopped).
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # importing the catalogue leaves nothing behind in the working tree

import mutants as catalogue  # noqa: E402  (scripts/mutants/, next to this file)

EXCLUDED_NAMES = {".venv", ".git", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache",
                  ".ruff_cache", ".ipynb_checkpoints"}
EXCLUDED_PATHS = {"benchmarks/results"}
GUARD_EXIT = 97  # the guard plugin's exit status: neurosim was not imported from the scratch copy
GUARD_PLUGIN = '''"""Written by scripts/mutation_test.py: neurosim must come from the scratch copy."""
import os

import pytest


def pytest_sessionstart(session):
    import importlib.util

    root = os.path.realpath(os.environ["NEUROSIM_MUTATION_ROOT"])
    spec = importlib.util.find_spec("neurosim")  # where ``import neurosim`` resolves, without running it
    where = os.path.realpath(spec.origin) if spec is not None and spec.origin else "nowhere"
    with open(os.environ["NEUROSIM_MUTATION_GUARD"], "w") as handle:
        handle.write(where)
    if not where.startswith(root + os.sep):
        pytest.exit(f"mutation guard: neurosim imported from {where}, not from the scratch copy {root}",
                    returncode=%d)


def pytest_sessionfinish(session, exitstatus):
    import sys

    module = sys.modules.get("neurosim")
    root = os.path.realpath(os.environ["NEUROSIM_MUTATION_ROOT"])
    if module is not None:
        where = os.path.realpath(module.__file__)
        with open(os.environ["NEUROSIM_MUTATION_GUARD"], "w") as handle:
            handle.write(where)
        if not where.startswith(root + os.sep):
            session.exitstatus = %d
''' % (GUARD_EXIT, GUARD_EXIT)


class UsageError(Exception):
    """Bad arguments or catalogue: exit 2."""


class BaselineError(Exception):
    """The unmutated copy fails its tests: exit 3."""


# -- the catalogue ------------------------------------------------------------------------------------
def load_catalogue(root: Path = ROOT) -> dict:
    """Every mutant, checked against the current source: the file exists, the snippet occurs exactly
    once, the mapped tests exist. ``UsageError`` listing every broken entry."""
    found = catalogue.load()
    problems = []
    for mutant in found.values():
        path = root / mutant.file
        if not path.is_file():
            problems.append(f"{mutant.id}: no file {mutant.file}")
            continue
        try:
            mutant.apply(path.read_text())
        except ValueError as exc:
            problems.append(str(exc))
        for test in mutant.tests:
            if not (root / test.split("::")[0]).exists():
                problems.append(f"{mutant.id}: mapped test {test} does not exist")
    if problems:
        raise UsageError("the mutant catalogue does not match the source (fix or remove these entries in "
                         "scripts/mutants/):\n  " + "\n  ".join(problems))
    return found


def select(found: dict, only: str | None, module: str | None) -> list:
    chosen = list(found.values())
    if only:
        ids = [part.strip() for part in only.split(",") if part.strip()]
        unknown = [i for i in ids if i not in found]
        if unknown or not ids:
            raise UsageError(f"unknown mutant id {', '.join(unknown) or repr(only)}; "
                             f"list them with --list (known: {len(found)})")
        chosen = [found[i] for i in dict.fromkeys(ids)]
    if module:
        path = Path(module)
        if path.is_absolute():
            try:
                path = path.resolve().relative_to(ROOT)
            except ValueError:
                raise UsageError(f"--module {module!r} is not inside the repository {ROOT}") from None
        wanted = path.as_posix().removeprefix("./")
        files = sorted({m.file for m in found.values()})
        if wanted not in files:
            raise UsageError(f"no mutants for module {module!r}; modules with mutants: {', '.join(files)}")
        chosen = [m for m in chosen if m.file == wanted]
        if not chosen:
            raise UsageError(f"--only and --module {module!r} select no mutant together")
    return chosen


# -- scratch copies -----------------------------------------------------------------------------------
def copy_tree(source: Path, target: Path) -> None:
    """The repository without the virtual environment, git data, caches and benchmark results."""
    def ignore(folder, names):
        relative = Path(folder).relative_to(source)
        skipped = set()
        for name in names:
            if name in EXCLUDED_NAMES or name.endswith(".egg-info"):
                skipped.add(name)
            elif (relative / name).as_posix() in EXCLUDED_PATHS:
                skipped.add(name)
        return skipped

    shutil.copytree(source, target, ignore=ignore, symlinks=True)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph(root: Path, package: str = "neurosim") -> dict:
    """``{module: {modules it imports}}`` for the package's modules (names it imports explicitly)."""
    files = {module_name(root, path): path for path in (root / package).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        base = name if is_package else name.rpartition(".")[0]
        edges = set()
        try:
            tree = ast.parse(path.read_text())
        except SyntaxError:
            graph[name] = edges
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    origin = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                for alias in node.names:
                    child = f"{origin}.{alias.name}"
                    edges.add(child if child in files else origin)
        graph[name] = {edge for edge in edges if edge in files}
    return graph


def dependents(graph: dict, module: str) -> set:
    """``module`` and every module that imports it, directly or through others."""
    reverse = {}
    for name, edges in graph.items():
        for edge in edges:
            reverse.setdefault(edge, set()).add(name)
    found, todo = {module}, [module]
    while todo:
        for name in reverse.get(todo.pop(), ()):
            if name not in found:
                found.add(name)
                todo.append(name)
    return found


def cache_subpath(folder: Path) -> str:
    """Where numba keeps the cache of the functions defined in ``folder`` under ``NUMBA_CACHE_DIR``
    (numba's ``_CacheLocator.get_suitable_cache_subpath``; checked against numba at start-up)."""
    folder = os.path.abspath(folder)
    return "_".join([os.path.split(folder)[-1], hashlib.sha1(folder.encode()).hexdigest()])


def numba_subpath(python: str, folder: Path) -> str | None:
    code = ("import sys\nfrom numba.core.caching import _CacheLocator as L\n"
            "print(L.get_suitable_cache_subpath(sys.argv[1]))")
    try:
        done = subprocess.run([python, "-c", code, str(Path(folder) / "x.py")], capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


class Runner:
    """Runs mutants; holds the baseline copy, its numba cache and the results."""

    def __init__(self, args, work: Path):
        self.args = args
        self.work = work
        self.python = args.python
        self.helper = work / "plugin"
        self.helper.mkdir()
        (self.helper / "_mutation_guard.py").write_text(GUARD_PLUGIN)
        self.base_tree = work / "baseline" / "repo"
        self.base_cache = work / "baseline" / "numba-cache"
        self.base_cache.mkdir(parents=True)
        copy_tree(ROOT, self.base_tree)
        self.graph = import_graph(self.base_tree)
        self.share_cache = not args.cold_cache
        if self.share_cache:
            expected = numba_subpath(self.python, self.base_tree / "neurosim")
            if expected != cache_subpath(self.base_tree / "neurosim"):
                print("mutation_test: cannot reproduce numba's cache layout; every mutant runs from a "
                      "cold numba cache", file=sys.stderr)
                self.share_cache = False
        self.lock = threading.Lock()
        self.full_baseline = None  # None: not run yet; else (ok, seconds, tail)
        self.counter = 0
        self.live = set()  # pytest processes running now (each the leader of its own process group)

    def stop(self) -> None:
        """Kill the pytest runs in progress (each with the processes it started)."""
        for process in list(self.live):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- running pytest -----------------------------------------------------------------------------
    def pytest(self, tree: Path, cache: Path, tests, log: Path) -> tuple:
        """``(status, returncode, seconds, output tail, first failure, imported from)``."""
        guard = log.with_suffix(".guard")
        env = dict(os.environ)
        env.update({"PYTHONPATH": os.pathsep.join([str(self.helper), str(tree)]
                                                  + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
                    "NUMBA_CACHE_DIR": str(cache), "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
                    "NEUROSIM_MUTATION_ROOT": str(tree), "NEUROSIM_MUTATION_GUARD": str(guard)})
        command = [self.python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "_mutation_guard",
                   *self.args.pytest_arg, *tests]
        started = time.perf_counter()
        with open(log, "wb") as output:
            process = subprocess.Popen(command, cwd=tree, env=env, stdout=output, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            self.live.add(process)
            try:
                returncode = process.wait(timeout=self.args.timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the pytest we started and its children
                returncode = process.wait()
                timed_out = True
            finally:
                self.live.discard(process)
        seconds = time.perf_counter() - started
        text = log.read_text(errors="replace")
        tail = "\n".join(text.splitlines()[-25:])
        failure = next((line.split(" - ")[0].split(None, 1)[1] for line in text.splitlines()
                        if line.startswith(("FAILED ", "ERROR ")) and len(line.split()) > 1), None)
        imported = guard.read_text() if guard.exists() else None
        if timed_out:
            status = "timeout"
        elif returncode == GUARD_EXIT or imported is None or not imported.startswith(str(tree.resolve()) + os.sep):
            status = "error"  # not verifiably the scratch copy's neurosim: nothing to conclude
        elif returncode == 0:
            status = "passed"
        elif returncode in (4, 5):  # usage error, no tests collected: the mapping is wrong
            status = "error"
        else:  # 1 failures, 2 interrupted (collection or import errors), 3 internal error, < 0 crash
            status = "failed"
        return status, returncode, seconds, tail, failure, imported

    def seed_cache(self, target: Path, tree: Path, mutated_file: str | None) -> None:
        """A per-run numba cache: the baseline's, moved to ``tree``'s paths, without the modules that
        are, or import, the mutated file."""
        target.mkdir(parents=True)
        if not self.share_cache:
            return
        dropped = set()
        if mutated_file is not None:
            path = self.base_tree / mutated_file
            if path.suffix == ".py" and (self.base_tree / "neurosim") in path.parents:
                dropped = dependents(self.graph, module_name(self.base_tree, path))
        folders = {cache_subpath(folder): folder.relative_to(self.base_tree)
                   for folder in [self.base_tree / "neurosim", *(self.base_tree / "neurosim").rglob("*")]
                   if folder.is_dir()}
        with self.lock:
            for entry in self.base_cache.iterdir():
                relative = folders.get(entry.name)
                if relative is None:  # another package's cache: its sources are not copied
                    shutil.copytree(entry, target / entry.name)
                    continue
                package = ".".join(relative.parts)
                destination = target / cache_subpath(tree / relative)
                destination.mkdir(parents=True, exist_ok=True)
                for item in entry.iterdir():
                    if f"{package}.{item.name.split('.')[0]}" in dropped:
                        continue
                    shutil.copy2(item, destination / item.name)

    # -- baselines ----------------------------------------------------------------------------------
    def _baseline_run(self, tests, name) -> tuple:
        """Run ``tests`` on the unmutated copy (with the shared cache, which it fills); a failure is
        tried once more, so that one flaky test does not stop everything (it is reported).
        Returns ``(passed, seconds, what went wrong)``."""
        why = ""
        for attempt in (1, 2):
            log = self.work / f"baseline-{name}-{attempt}.log"
            status, code, seconds, tail, failure, imported = self.pytest(self.base_tree, self.base_cache, tests, log)
            if status == "passed":
                if why:
                    print(f"  warning: the unmutated copy failed its {name} once and then passed (a flaky "
                          f"test: {why.splitlines()[0]}); a mutant 'killed' by it may be a false kill",
                          file=sys.stderr, flush=True)
                return True, seconds, why
            why = (f"{status}, exit {code}{', ' + failure if failure else ''}; neurosim from {imported}:\n"
                   f"{tail}")
        return False, seconds, why

    def baseline(self, tests) -> float:
        """The unmutated copy must pass the mapped tests of the chosen mutants."""
        ok, seconds, why = self._baseline_run(tests, "mapped tests")
        if not ok:
            raise BaselineError(f"the unmutated copy fails the mapped tests ({why})")
        return seconds

    def ensure_full_baseline(self) -> None:
        """The unmutated copy must pass the full suite (run once, when a mutant first needs it)."""
        with self.lock:
            if self.full_baseline is None:
                self.full_baseline = self._baseline_run([], "full suite")
                print(f"  baseline full suite: {'passed' if self.full_baseline[0] else 'failed'} in "
                      f"{self.full_baseline[1]:.0f} s", flush=True)
            ok, _, why = self.full_baseline
        if not ok:
            raise BaselineError(f"the unmutated copy fails the full suite ({why})")

    # -- one mutant ---------------------------------------------------------------------------------
    def run(self, mutant) -> dict:
        with self.lock:
            self.counter += 1
            slot = self.work / f"m{self.counter:03d}-{mutant.id}"
        tree, cache = slot / "repo", slot / "numba-cache"
        record = {"id": mutant.id, "file": mutant.file, "description": mutant.description,
                  "tests": list(mutant.tests), "status": "error", "phase": "apply", "seconds": 0.0,
                  "killed_by": None}
        started = time.perf_counter()
        try:
            copy_tree(self.base_tree, tree)  # the baseline's snapshot, not the live working tree
            path = tree / mutant.file
            path.write_text(mutant.apply(path.read_text()))
            self.seed_cache(cache, tree, mutant.file)
            # the mapped tests first; the full suite only for a mutant that survives them
            phases = [("full", [])] if self.args.full else [("subset", list(mutant.tests)), ("full", [])]
            for phase, tests in phases:
                if phase == "full":
                    self.ensure_full_baseline()
                status, code, seconds, tail, failure, imported = self.pytest(tree, cache, tests,
                                                                             slot / f"{phase}.log")
                record.update(phase=phase, returncode=code, imported_from=imported)
                record.setdefault("phase_seconds", {})[phase] = round(seconds, 2)
                if status == "failed":
                    record.update(status="killed", killed_by=failure or f"exit {code}")
                    break
                if status in ("timeout", "error"):
                    record.update(status=status, tail=tail)
                    break
            else:  # passed every phase
                record.update(status="survived")
        except BaselineError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported per mutant, the others still run
            record.update(status="error", error=f"{type(exc).__name__}: {exc}")
        finally:
            record["seconds"] = round(time.perf_counter() - started, 2)
            if not self.args.keep:
                shutil.rmtree(slot, ignore_errors=True)
        return record


# -- reports ------------------------------------------------------------------------------------------
def score(records) -> dict:
    counts = {status: sum(r["status"] == status for r in records)
              for status in ("killed", "timeout", "survived", "error")}
    scored = len(records) - counts["error"]
    detected = counts["killed"] + counts["timeout"]
    return {"mutants": len(records), **counts, "score": detected / scored if scored else float("nan")}


def markdown(records) -> str:
    lines = ["| id | file | description | status | phase | seconds | killed by |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['id']} | `{r['file']}` | {r['description']} | {r['status']} | {r['phase']} | "
                     f"{r['seconds']:.0f} | {('`' + r['killed_by'] + '`') if r.get('killed_by') else ''} |")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="mutation_test.py", description="Apply each mutant of scripts/mutants/ to a scratch copy of the "
        "repository and check that the tests fail.",
        epilog="exit codes: 0 done; 1 score below --fail-under; 2 bad arguments or catalogue; 3 baseline fails")
    parser.add_argument("--only", metavar="ID[,ID]", help="run only these mutants")
    parser.add_argument("--module", metavar="PATH", help="run only the mutants of this file, e.g. neurosim/optim.py")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--full", action="store_true", help="run every mutant against the full suite "
                        "(default: its mapped tests first, the full suite only if it survives them)")
    parser.add_argument("--out", metavar="FILE.json", help="write the results as JSON")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per pytest run (default 300)")
    parser.add_argument("--cold-cache", action="store_true", help="start every run from an empty numba cache")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies and logs (printed path)")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs pytest (default: this one)")
    parser.add_argument("--fail-under", type=float, metavar="PCT", help="exit 1 if the score is below PCT percent")
    parser.add_argument("--pytest-arg", action="append", default=[], metavar="ARG",
                        help="pass ARG to every pytest run, baseline included (repeatable), e.g. "
                             "--pytest-arg=--deselect=tests/test_x.py::test_known_to_fail")
    parser.add_argument("--list", action="store_true", help="check the catalogue and list it, run nothing")
    args = parser.parse_args(argv)
    cpus = os.cpu_count() or 1
    if not 1 <= args.jobs <= cpus:
        raise UsageError(f"--jobs must be between 1 and {cpus} (the CPUs of this machine), got {args.jobs}")
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout}")
    return args


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        found = load_catalogue()
        chosen = select(found, args.only, args.module)
    except UsageError as exc:
        print(f"mutation_test: error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.id:42} {m.file:36} {m.description}")
        print(f"{len(chosen)} mutants, every snippet found exactly once")
        return 0
    work = Path(tempfile.mkdtemp(prefix="neurosim-mutation-"))
    started = time.perf_counter()
    records = []
    runner = pool = None
    try:
        runner = Runner(args, work)
        subsets = sorted({test for m in chosen for test in m.tests})
        print(f"mutation_test: {len(chosen)} mutants, {args.jobs} at a time, scratch in {work}", flush=True)
        seconds = runner.baseline(subsets)
        print(f"  baseline (mapped tests, unmutated): passed in {seconds:.0f} s", flush=True)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs)
        futures = {pool.submit(runner.run, m): m for m in chosen}
        for future in concurrent.futures.as_completed(futures):
            record = future.result()
            records.append(record)
            print(f"  [{len(records)}/{len(chosen)}] {record['id']}: {record['status']} "
                  f"({record['phase']}, {record['seconds']:.0f} s)"
                  + (f" by {record['killed_by']}" if record.get("killed_by") else ""), flush=True)
    except BaselineError as exc:
        print(f"mutation_test: error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("mutation_test: interrupted", file=sys.stderr)
        return 130
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if runner is not None and (len(records) < len(chosen)):
            runner.stop()
        if pool is not None:
            pool.shutdown(wait=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    order = {m.id: k for k, m in enumerate(chosen)}
    records.sort(key=lambda r: order[r["id"]])
    summary = score(records)
    survivors = [r for r in records if r["status"] == "survived"]
    report = {"summary": summary, "seconds": round(time.perf_counter() - started, 1), "jobs": args.jobs,
              "pytest_args": args.pytest_arg,
              "full": args.full, "timeout": args.timeout, "python": args.python, "root": str(ROOT),
              "survivors": survivors, "mutants": records}
    print()
    print(markdown(records))
    print()
    print("survivors:", json.dumps([{k: r[k] for k in ("id", "file", "description")} for r in survivors], indent=1))
    print(f"mutation score: {summary['killed'] + summary['timeout']}/{summary['mutants'] - summary['error']} = "
          f"{100 * summary['score']:.1f}% (killed {summary['killed']}, timeout {summary['timeout']}, survived "
          f"{summary['survived']}, error {summary['error']}) in {report['seconds']:.0f} s"
          + (f"; scratch kept in {work}" if args.keep else ""))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    if args.fail_under is not None and not summary["score"] * 100 >= args.fail_under:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
