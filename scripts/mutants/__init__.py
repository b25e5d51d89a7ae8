"""The mutant catalogue of ``scripts/mutation_test.py``: one realistic one-line bug per entry.

Each module of this package registers the mutants of one area of neurosim by calling
:func:`mutant`; :func:`load` imports every module here, so a new file is picked up without being
listed anywhere. To add mutants for a module of neurosim, add them to the area file that covers it
(or create ``scripts/mutants/<area>.py``)::

    from . import mutant

    mutant("optim-sgd-sign", "neurosim/optim.py",
           find="return params - self.lr * grads, {}",
           replace="return params + self.lr * grads, {}",
           description="SGD ascends the loss",
           tests=["tests/test_optim.py"])

``find`` is an exact snippet of the current source and must occur exactly once in ``file``
(``mutation_test.py --list`` checks every entry and fails loudly otherwise, so the catalogue
cannot rot silently when the code changes); ``replace`` is what it becomes; ``tests`` are the test
files (or node ids) to run first: the mutant is run against the full suite only if it survives
them.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Mutant:
    """One injected defect: replace the unique snippet ``find`` of ``file`` (relative to the
    repository root) by ``replace``; ``tests`` run first."""

    id: str
    file: str
    find: str
    replace: str
    description: str
    tests: tuple

    def apply(self, source: str) -> str:
        """``source`` with the mutation applied; ``ValueError`` unless ``find`` occurs exactly once."""
        count = source.count(self.find)
        if count != 1:
            raise ValueError(f"mutant {self.id}: the snippet to replace occurs {count} times in {self.file} "
                             f"(must be exactly once): {self.find!r}")
        return source.replace(self.find, self.replace, 1)


CATALOGUE: dict = {}


def mutant(id: str, file: str, *, find: str, replace: str, description: str, tests) -> Mutant:
    """Register a mutant (see the module docstring). Ids are unique, lower case."""
    if not isinstance(id, str) or not _ID.match(id):
        raise ValueError(f"mutant id must be lower-case letters, digits, '-', '_' or '.', got {id!r}")
    if id in CATALOGUE:
        raise ValueError(f"mutant id {id!r} is registered twice")
    if not find or find == replace:
        raise ValueError(f"mutant {id}: find must be non-empty and differ from replace")
    if isinstance(tests, str):
        tests = [tests]
    if not tests or not all(isinstance(t, str) and t for t in tests):
        raise ValueError(f"mutant {id}: tests must name at least one test file or node id")
    if not description or "\n" in description:
        raise ValueError(f"mutant {id}: description must be one line")
    found = CATALOGUE[id] = Mutant(id, file, find, replace, description, tuple(tests))
    return found


def load() -> dict:
    """Every registered mutant, ``{id: Mutant}``, after importing every module of this package."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        importlib.import_module(f"{__name__}.{info.name}")
    return dict(CATALOGUE)
