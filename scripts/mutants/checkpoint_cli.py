"""Mutants of checkpoints and the command line (neurosim/checkpoint.py, neurosim/cli.py)."""
from . import mutant

mutant("checkpoint-checksum-not-checked", "neurosim/checkpoint.py",
       find="    if hashlib.sha256(data).hexdigest() != expected:\n",
       replace="    if False and hashlib.sha256(data).hexdigest() != expected:\n",
       description="a checkpoint's arrays are loaded without checking their checksum",
       tests=["tests/test_checkpoints.py", "tests/test_oracles_runs.py"])

mutant("checkpoint-oldest-first", "neurosim/checkpoint.py",
       find="return [path for _, path in sorted(found, reverse=True)]",
       replace="return [path for _, path in sorted(found)]",
       description="checkpoints are listed oldest first, so resume picks the oldest",
       tests=["tests/test_checkpoints.py", "tests/test_oracles_runs.py"])

mutant("checkpoint-keeps-one-more", "neurosim/checkpoint.py",
       find="    for old in _listed(folder)[keep:]:\n",
       replace="    for old in _listed(folder)[keep + 1:]:\n",
       description="one checkpoint more than `keep` is left on disk",
       tests=["tests/test_checkpoints.py", "tests/test_oracles_runs.py"])

mutant("cli-bad-input-exit-1", "neurosim/cli.py",
       find='    except (ValueError, TypeError, FileNotFoundError) as exc:\n        print(f"neurosim: error: {exc}", file=sys.stderr)\n        return 2\n',
       replace='    except (ValueError, TypeError, FileNotFoundError) as exc:\n        print(f"neurosim: error: {exc}", file=sys.stderr)\n        return 1\n',
       description="bad input exits 1 (the code of a diverged run) instead of 2",
       tests=["tests/test_cli_workflow.py", "tests/test_oracles_runs.py"])

mutant("cli-diverged-exit-0", "neurosim/cli.py",
       find='        print(f"neurosim: {message}", file=sys.stderr)\n        return 1\n',
       replace='        print(f"neurosim: {message}", file=sys.stderr)\n        return 0\n',
       description="a diverged training run exits 0 as if it had completed",
       tests=["tests/test_cli_workflow.py", "tests/test_checkpoints.py", "tests/test_oracles_runs.py"])

mutant("cli-depths-exclusive", "neurosim/cli.py",
       find="    return range(start, stop + 1)\n",
       replace="    return range(start, stop)\n",
       description="--depths START:STOP leaves out STOP (documented as inclusive)",
       tests=["tests/test_complexity.py", "tests/test_cli_workflow.py"])
