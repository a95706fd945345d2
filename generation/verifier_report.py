"""Step 4: a verifier report (JSON, Markdown, HTML, figures) of a Step 3 dataset, and an optional Weaver export."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

import numpy as np
from tqdm import tqdm

from generation.common.cli import Provenance, UserError, command_parser, run_main
from generation.common.logs import add_verbose_argument
from generation.common.writing import add_lock_argument, claim, publish_together, write_json_atomic, write_text_atomic
from generation.data.dataset_io import add_split_argument, is_saved_dataset, own_rows, read_input
from generation.data.schema import COLUMN_RULES, SCORES, STEP_COLUMNS, check_rows
from generation.grading.decision import DATASET_TYPES
from generation.report import metrics, render
from generation.report.scores import COMBINED, choose, correctness, discover, sample_count, score_matrix, text_lists
from generation.report.weaver_export import export_plan, weaver_dataset
from generation.steps.settings import parse_quietly


def build_parser() -> argparse.ArgumentParser:
    """The report's command line."""
    parser = command_parser(__doc__)
    parser.add_argument("--dataset_path", required=True,
                        help="Step 3 output, a released Weaver dataset (hub id) or a plain Dataset folder")
    parser.add_argument("--output_dir", required=True, help="folder for report.json/.md/.html and the PNG figures")
    parser.add_argument("--verifiers", help="comma-separated verifier names to report (default: all)")
    parser.add_argument("--dataset_type", choices=("auto", *DATASET_TYPES), default="auto",
                        help="how majority vote compares answers (as Step 2); auto: multiple choice when the "
                             "dataset has options/choices, else math")
    parser.add_argument("--export_weaver", metavar="DIR",
                        help="also write a plain Dataset folder that Weaver's local loader reads (default: no export)")
    add_lock_argument(parser)
    add_split_argument(parser)
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                        help="(repeatable) export verifier OLD (name or column) under Weaver's column name NEW, e.g. "
                             "MyRM=URM_scores; Weaver reads only the verifier names its constants.py maps")
    add_verbose_argument(parser)
    return parser


def answer_type(requested: str, columns: list[str]) -> str:
    """The dataset type whose answer comparison majority vote uses."""
    if requested != "auto":
        return requested
    return "mmlu_pro" if "options" in columns else "mmlu" if "choices" in columns else "math"


def check_target(path: str, is_own: Callable[[str], bool], what: str) -> None:
    """Refuse an output path that is a file or a folder this tool did not write."""
    if os.path.isfile(path) or os.path.isdir(path) and os.listdir(path) and not is_own(path):
        raise UserError(f"{what} {path} exists and is not an earlier {what.split()[0]} output (it would be "
                        f"replaced); pass a new folder path")


def read_dataset(args: argparse.Namespace):
    """The dataset, its verifiers (the --verifiers subset) and its arrays: correctness, answers, methods."""
    dataset = read_input(args.dataset_path, args.split)[0]
    wanted = [n.strip() for n in args.verifiers.split(",") if n.strip()] if args.verifiers else None
    return (dataset, *verifier_arrays(dataset, args.dataset_path, wanted))


def verifier_arrays(dataset, source: str, wanted: list[str] | None) -> tuple[list, dict, dict[str, np.ndarray]]:
    """A graded dataset's verifiers (the `wanted` ones, all when None), its arrays (correctness, answers, methods,
    non-finite counts) and each verifier's (rows x samples) scores; UserError when it has no grades or verifiers."""
    if "answer_correct" not in dataset.column_names:
        raise UserError(f"{source} has no 'answer_correct' column; grade the samples first with Step 2 "
                        f"(python generation/unified_evaluation.py --input_path ... --output_path ...)")
    verifiers = choose(discover(dataset.column_names), wanted)
    if not verifiers:
        raise UserError(f"{source} has no verifier columns (*_scores, *_verdicts); run Step 3 "
                        f"(python generation/unified_RMs_and_LM_Judges.py) first")
    check_rows(dataset, {**{name: COLUMN_RULES[name] for name in STEP_COLUMNS["step4"]},
                         **{column: SCORES for verifier in verifiers for column in verifier.columns}}, source)
    needed = ["answer_correct", "extracted_answers", "answer_extraction_method", *(v.column for v in verifiers)]
    table = dataset.select_columns([c for c in needed if c in dataset.column_names]).with_format("arrow")[:]
    samples = sample_count(table)
    arrays = {"correct": correctness(table, samples),
              "answers": text_lists(table, "extracted_answers", samples),
              "methods": text_lists(table, "answer_extraction_method", samples)}
    scores, left_out = {}, {}
    for verifier in tqdm(verifiers, desc="reading verifier columns", unit="verifier"):
        scores[verifier.name], left_out[verifier.name] = score_matrix(table, verifier.column, samples)
    for name, count in left_out.items():
        if count:
            print(f"notice: verifier {name}: {count} non-finite score(s) (inf, -inf or NaN) counted as missing and "
                  f"left out of its metrics and figures", file=sys.stderr)
    arrays["non_finite"] = {name: count for name, count in left_out.items() if count}
    return verifiers, arrays, scores


def compute(verifiers, arrays: dict, scores: dict[str, np.ndarray], dataset_type: str) -> tuple[dict, dict]:
    """report.json's content and the best-of-k curves."""
    correct = arrays["correct"]
    kinds = {v.name: v.kind for v in verifiers}
    empty = [name for name, values in scores.items() if np.isnan(values).all()]
    for name in empty:
        column = next(v.column for v in verifiers if v.name == name)
        print(f"warning: verifier {name} has no score at all (column {column!r} is all None): reported with "
              f"coverage 0 and null metrics; re-run Step 3 for it or leave it out with --verifiers", file=sys.stderr)
    combined = metrics.normalised_mean([scores[name] for name in scores if name not in empty])
    if combined is not None:
        scores = {**scores, COMBINED: combined}
        kinds[COMBINED] = "reward_model"
    report = {"rows": int(correct.shape[0]), "samples_per_row": int(correct.shape[1]),
              "baselines": metrics.baselines(correct, arrays["answers"], arrays["methods"], dataset_type),
              "verifiers": {name: metrics.verifier_stats(kinds[name], values, correct)
                            for name, values in tqdm(scores.items(), desc="verifier metrics", unit="verifier")}}
    ks = metrics.k_values(correct.shape[1])
    curves = {name: metrics.best_of_k(scores[name], correct, ks) for name in render.ranked(report)
              if name not in empty}
    if arrays["answers"] is not None:
        with tqdm(total=metrics.RESAMPLES, desc="majority vote of k", unit="draw") as bar:
            groups = metrics.vote_groups(arrays["answers"], dataset_type)
            curves["majority vote"] = metrics.majority_of_k(groups, correct, ks, bar.update)
    curves["pass@k"] = metrics.pass_at_k(correct, ks)
    return report, {"ks": ks, "curves": curves, "scores": scores, "empty": empty}


def write_report(folder: str, report: dict, extra: dict, correct: np.ndarray, source: str) -> None:
    """report.json, the three figures, report.md and report.html into folder."""
    os.makedirs(folder)
    write_json_atomic(os.path.join(folder, "report.json"), report)
    render.draw_auroc(report, os.path.join(folder, "auroc.png"))
    render.draw_best_of_k(extra["curves"], extra["ks"], os.path.join(folder, "best_of_k.png"))
    top = [n for n in render.ranked(report) if n not in extra["empty"]][:render.TOP_DISTRIBUTIONS]
    render.draw_distributions({n: extra["scores"][n] for n in top}, correct,
                              os.path.join(folder, "score_distributions.png"))
    write_text_atomic(os.path.join(folder, "report.md"), render.markdown(report, source))
    write_text_atomic(os.path.join(folder, "report.html"), render.page(report, source, folder))


def main(argv: list[str] | None = None) -> int:
    """Check the output folders, hold them, then read, compute and write the report (and the Weaver export)."""
    args = parse_quietly(build_parser(), argv)
    check_target(args.output_dir, lambda p: os.path.isfile(os.path.join(p, "report.json")), "report folder")
    if args.export_weaver:
        check_target(args.export_weaver, is_saved_dataset, "dataset folder")
    elif args.rename:
        raise UserError("--rename names columns of the Weaver export: pass --export_weaver DIR too")
    outputs = {"--output_dir": args.output_dir}
    if args.export_weaver:
        outputs["--export_weaver"] = args.export_weaver
    with claim(outputs, [("--dataset_path", args.dataset_path)], args.lock):
        return report_and_export(args)


def report_and_export(args: argparse.Namespace) -> int:
    """Read, compute, then write the report folder and the Weaver export, each as one unit with its provenance."""
    provenance = Provenance("verifier_report", vars(args))
    dataset, verifiers, arrays, scores = read_dataset(args)
    plan = export_plan(verifiers, args.rename) if args.export_weaver else None
    dataset_type = answer_type(args.dataset_type, dataset.column_names)
    started = time.time()
    report, extra = compute(verifiers, arrays, scores, dataset_type)
    if args.export_weaver:
        judges = {v.name: scores[v.name] for v in verifiers if v.kind == "judge"}
        exported, mapping = weaver_dataset(dataset, verifiers, plan, judges)
        provenance.update(weaver_export=mapping)
        extra["weaver"] = mapping
    provenance.update(verifiers={v.name: {"kind": v.kind, "column": v.column} for v in verifiers},
                      dataset_type=dataset_type, all_none_verifiers=extra["empty"],
                      non_finite_scores=arrays["non_finite"],
                      compute_time_s=round(time.time() - started, 3))
    def build_report(folder: str) -> None:
        write_report(folder, report, extra, arrays["correct"], args.dataset_path)

    units = [(args.output_dir, build_report)]
    if args.export_weaver:
        units.insert(0, (args.export_weaver, lambda folder: own_rows(exported).save_to_disk(folder)))
    publish_together(units, provenance.snapshot())
    print_summary(report, args, extra)
    return 0


def print_summary(report: dict, args: argparse.Namespace, extra: dict) -> None:
    """A short summary: baselines, the best verifiers, where the files are."""
    print(f"{report['rows']} problems x {report['samples_per_row']} samples; {render.baseline_line(report)}")
    for name in render.ranked(report)[:5]:
        stats = report["verifiers"][name]
        print(f"  {name}: select@1 {render.cell(stats['select_at_1'])}, AUROC {render.cell(stats['auroc'])}")
    print(f"report: {os.path.join(args.output_dir, 'report.md')} (and report.html, report.json, 3 PNG figures)")
    if args.export_weaver:
        mapping = extra["weaver"]
        print(f"weaver export: {args.export_weaver} (plain Dataset; load_from_disk); renamed {mapping['renamed']}; "
              f"left out (weaver has no name for them): {mapping['dropped'] or 'none'}")


if __name__ == "__main__":
    run_main(main)
