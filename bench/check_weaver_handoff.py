"""Run Weaver's own selection code on a Step 4 export and compare the baselines both compute with report.json.

    python bench/check_weaver_handoff.py --weaver ~/scaling-verification --python ~/weaver-env/bin/python \
        --export datasets/example/weaver.hf --report datasets/example/report

--weaver is a checkout of HazyResearch/scaling-verification and --python the interpreter of an environment where its
selection code runs (hydra-core, omegaconf, wandb, rich, tabulate, sentence-transformers, tensorboardX, numpy<2.4
and metal-ama from github.com/mayeechen/metal-ama; see docs/step4-report.md). Weaver runs unmodified on a copy of the
export (its weak supervision may write into the dataset folder), from a scratch folder (hydra writes outputs/ there);
when the export holds weaver_constants_additions.py, its lines are executed in weaver.constants first, exactly as if
they had been added to weaver/constants.py. Prints one line per run; exit 1 when a shared baseline differs from
report.json by more than Weaver's printed rounding (3 decimals), exit 2 when Weaver's environment is unfit or one of
its runs fails.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

RUNNER = """
import runpy, sys
checkout, additions, *overrides = sys.argv[1:]
sys.path.insert(0, checkout)
if additions:
    import weaver.constants as constants
    with open(additions) as handle:
        exec(handle.read(), vars(constants))
script = checkout + "/selection/run.py"
sys.argv = [script, *overrides]
runpy.run_path(script, run_name="__main__")
"""
COMMON = ["logging=none"]
# run name -> (config, overrides); {path} is the export copy. first_sample/majority_vote configs have no dataset_path
# key (hence the +), weak_supervision's default save_weaver_scores would write into the dataset folder.
RUNS = {
    "first_sample": ("first_sample", ["+data_cfg.dataset_path={path}"]),
    "majority_vote": ("majority_vote", ["+data_cfg.dataset_path={path}"]),
    "coverage": ("majority_vote", ["+data_cfg.dataset_path={path}", "model_cfg.model_type=coverage"]),
    "naive_ensemble": ("weak_supervision", ["data_cfg.dataset_path={path}", "data_cfg.save_weaver_scores=false",
                                            "model_cfg.model_type=naive_ensemble"]),
    "weak_supervision (gold labels for class balance and dependencies: Weaver's default)":
        ("weak_supervision", ["data_cfg.dataset_path={path}", "data_cfg.save_weaver_scores=false"]),
    "weak_supervision (label-free: class balance 0.5, no dependency dropping)":
        ("weak_supervision", ["data_cfg.dataset_path={path}", "data_cfg.save_weaver_scores=false",
                              "model_params.weak_supervision.cb_args.class_balance=0.5",
                              "model_params.weak_supervision.use_deps=none"]),
}
# report.json baseline -> (Weaver run, column of its SUMMARY table)
SHARED = {"first_sample": ("first_sample", "Select_Acc"), "sample_accuracy": ("first_sample", "Sample_Acc"),
          "majority_vote": ("majority_vote", "Select_Acc"), "pass_at_k": ("coverage", "Select_Acc")}
TOLERANCE = 0.0005 + 1e-9  # Weaver prints 3 decimals
# Weaver's majority vote (weaver/models.py) calls int() on a 1-element array: NumPy 2.4 raises TypeError there.
NUMPY_BELOW = (2, 4)


def fail(message: str) -> None:
    """Stop with exit 2: Weaver's environment or one of its runs failed (not a baseline that differs)."""
    print(message, file=sys.stderr)
    sys.exit(2)


def check_environment(python: str) -> None:
    """Stop with a one-line error when Weaver's Python lacks NumPy or has one its majority vote fails on."""
    done = subprocess.run([python, "-c", "import numpy; print(numpy.__version__)"], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        fail(f"--python {python}: cannot import numpy there ({why}); install Weaver's dependencies "
             "(docs/step4-report.md)")
    version = tuple(int(part) for part in done.stdout.strip().split(".")[:2])
    if version >= NUMPY_BELOW:
        fail(f"--python {python}: numpy {done.stdout.strip()} makes Weaver's majority vote fail (TypeError: only "
             "0-dimensional arrays can be converted to Python scalars); run pip install 'numpy<2.4' there")


def summary_row(text: str) -> dict[str, str]:
    """The 'Test' row of Weaver's SUMMARY RESULTS grid table, by column."""
    lines = text[text.index("SUMMARY RESULTS"):].splitlines()
    header = next(line for line in lines if line.startswith("| Set"))
    row = next(line for line in lines if line.startswith("| Test"))
    return dict(zip([cell.strip() for cell in header.strip("|").split("|")],
                    [cell.strip() for cell in row.strip("|").split("|")]))


def run_weaver(args: argparse.Namespace, export: str, scratch: str, config: str, overrides: list[str]) -> dict:
    """One selection run; its summary row (exits with Weaver's output when it fails)."""
    additions = os.path.join(export, "weaver_constants_additions.py")
    command = [args.python, "-c", RUNNER, os.path.abspath(args.weaver), additions if os.path.exists(additions) else "",
               f"--config-name={config}", *COMMON, *(o.format(path=export) for o in overrides)]
    done = subprocess.run(command, cwd=scratch, capture_output=True, text=True, check=False)
    if done.returncode != 0 or "SUMMARY RESULTS" not in done.stdout:
        fail(f"Weaver's {config} run failed (exit {done.returncode}):\n"
                 f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return summary_row(done.stdout)


def main() -> int:
    """Run every selection config, print the comparison, exit 1 on a shared baseline that differs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weaver", required=True, help="a HazyResearch/scaling-verification checkout")
    parser.add_argument("--python", default=sys.executable, help="the Python of Weaver's environment")
    parser.add_argument("--export", required=True, help="a Step 4 --export_weaver folder")
    parser.add_argument("--report", required=True, help="the Step 4 --output_dir of the same run")
    args = parser.parse_args()
    check_environment(args.python)
    with open(os.path.join(args.report, "report.json")) as handle:
        report = json.load(handle)
    results = {}
    with tempfile.TemporaryDirectory(prefix="weaver-handoff-") as scratch:
        export = os.path.join(scratch, "export")
        shutil.copytree(args.export, export)
        for name, (config, overrides) in RUNS.items():
            results[name] = run_weaver(args, export, scratch, config, overrides)
            print(f"{name}: Select_Acc {results[name]['Select_Acc']}, Sample_Acc {results[name]['Sample_Acc']} "
                  f"({results[name]['N_Problems']} problems)", flush=True)
    differ = [] if int(results["first_sample"]["N_Problems"]) == report["rows"] else ["rows"]
    print(f"problems: report.json {report['rows']}, Weaver {results['first_sample']['N_Problems']}")
    for key, (run, column) in SHARED.items():
        ours, theirs = report["baselines"][key], float(results[run][column])
        same = ours is not None and abs(ours - theirs) <= TOLERANCE
        differ += [] if same else [key]
        print(f"{key}: report.json {ours:.4f}, Weaver {theirs:.3f} ({run} {column}): {'equal' if same else 'DIFFER'}")
    for kind, what in (("single", "best single verifier"), ("combination", "mean_of_normalised")):
        values = [s["select_at_1"] for s in report["verifiers"].values() if s["select_at_1"] is not None
                  and (s["kind"] == "combination") == (kind == "combination")]
        if values:
            print(f"{what}'s select@1 in report.json: {max(values):.4f}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
