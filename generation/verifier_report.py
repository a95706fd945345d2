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
from generation.report import figures, render
from generation.report.analysis import analyse, keep_rows, ranked, recorded_costs, unscored_rows
from generation.report.scores import choose, correctness, discover, sample_count, score_matrix, text_lists
from generation.report.weaver_export import ADDITIONS, constants_additions, export_plan, weaver_dataset
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
                        help="(repeatable) export verifier OLD (name or column) under Weaver's column name NEW for "
                             "the same model, e.g. MyURM=URM_scores (a verifier Weaver has no name for keeps its own "
                             "and gets its lines for weaver/constants.py in the export)")
    parser.add_argument("--drop_unscored_rows", action="store_true",
                        help="leave rows where no verifier has any score out of the report and the Weaver export "
                             "(Weaver's loader cannot take them); default: name them and keep them")
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


def write_report(folder: str, report: dict, extra: dict, correct: np.ndarray, source: str) -> None:
    """report.json, the figures, report.md and report.html into folder."""
    os.makedirs(folder)
    write_json_atomic(os.path.join(folder, "report.json"), report)
    names = ranked(report)
    figures.draw_verifiers(report, names, os.path.join(folder, "auroc.png"))
    figures.draw_best_of_k(report["best_of_k"], names, os.path.join(folder, "best_of_k.png"))
    top = [n for n in names if n not in extra["empty"]][:figures.TOP_DISTRIBUTIONS]
    figures.draw_distributions({n: extra["scores"][n] for n in top}, correct,
                               os.path.join(folder, "score_distributions.png"))
    related = report["correlations"]["verifiers"]
    figures.draw_correlations(related, extra["matrix"], {n: extra["kinds"][n] for n in related},
                              os.path.join(folder, "correlations.png"))
    figures.draw_scatter(report, os.path.join(folder, "auroc_vs_select.png"))
    write_text_atomic(os.path.join(folder, "report.md"), render.markdown(report, source, extra["costs"]))
    write_text_atomic(os.path.join(folder, "report.html"), render.page(report, source, folder, extra["costs"]))


def main(argv: list[str] | None = None) -> int:
    """Check the output folders, hold them, then read, compute and write the report (and the Weaver export)."""
    args = parse_quietly(build_parser(), argv)
    check_target(args.output_dir, lambda p: os.path.isfile(os.path.join(p, "report.json")), "report folder")
    if args.export_weaver:
        check_target(args.export_weaver, is_saved_dataset, "dataset folder")
    elif args.rename or args.drop_unscored_rows:
        flag = "--rename" if args.rename else "--drop_unscored_rows"
        raise UserError(f"{flag} is about the Weaver export: pass --export_weaver DIR too")
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
    unscored = unscored_rows(scores) if args.export_weaver else []
    if unscored and args.drop_unscored_rows:
        keep = ~np.isin(np.arange(len(dataset)), unscored)
        dataset = dataset.select(np.flatnonzero(keep))
        arrays, scores = keep_rows(arrays, scores, keep)
        provenance.update(dropped_unscored_rows=unscored)
        print(f"notice: left out {len(unscored)} row(s) where no verifier has a score (--drop_unscored_rows): "
              f"{row_list(unscored)}", file=sys.stderr)
    elif unscored:
        print(f"warning: {len(unscored)} row(s) have no score from any verifier ({row_list(unscored)}): Weaver's "
              f"loader drops them from the scores but not from the answers, so its majority vote and first sample "
              f"fail or misalign; pass --drop_unscored_rows to leave them out of the report and the export",
              file=sys.stderr)
    started = time.time()
    report, extra = analyse(verifiers, arrays, scores, dataset_type)
    extra["costs"] = recorded_costs(args.dataset_path)
    if args.export_weaver:
        judges = {v.name: scores[v.name] for v in verifiers if v.kind == "judge"}
        exported, mapping = weaver_dataset(dataset, verifiers, plan, judges, arrays["answers"], dataset_type)
        additions = constants_additions(plan)
        provenance.update(weaver_export=mapping, unscored_rows=unscored)
        extra["weaver"] = mapping

        def build_export(folder: str) -> None:
            own_rows(exported).save_to_disk(folder)
            if additions:
                write_text_atomic(os.path.join(folder, ADDITIONS), additions)

    provenance.update(verifiers={v.name: {"kind": v.kind, "column": v.column} for v in verifiers},
                      dataset_type=dataset_type, all_none_verifiers=extra["empty"],
                      non_finite_scores=arrays["non_finite"],
                      compute_time_s=round(time.time() - started, 3))

    def build_report(folder: str) -> None:
        write_report(folder, report, extra, arrays["correct"], args.dataset_path)

    units = [(args.output_dir, build_report)]
    if args.export_weaver:
        units.insert(0, (args.export_weaver, build_export))
    publish_together(units, provenance.snapshot())
    print_summary(report, args, extra)
    return 0


def row_list(rows: list[int], shown: int = 10) -> str:
    """Row numbers, the first few and how many more."""
    more = f" and {len(rows) - shown} more" if len(rows) > shown else ""
    return ", ".join(map(str, rows[:shown])) + more


def print_summary(report: dict, args: argparse.Namespace, extra: dict) -> None:
    """A short summary: baselines, the best verifiers with their intervals, where the files are."""
    print(f"{report['rows']} problems x {report['samples_per_row']} samples; {render.baseline_line(report)}")
    bounds, overlapping = report["intervals"]["verifiers"], report["ranking"]["overlapping_best"] or []
    for name in ranked(report)[:5]:
        stats = report["verifiers"][name]
        near = " (interval overlaps the best's)" if name in overlapping[1:] else ""
        print(f"  {name}: select@1 {render.with_interval(stats['select_at_1'], bounds[name]['select_at_1'])}, "
              f"AUROC {render.with_interval(stats['auroc'], bounds[name]['auroc'])}{near}")
    print(f"report: {os.path.join(args.output_dir, 'report.md')} (and report.html, report.json, "
          f"{len(render.FIGURES)} PNG figures)")
    if args.export_weaver:
        mapping = extra["weaver"]
        print(f"weaver export: {args.export_weaver} (plain Dataset; load_from_disk); renamed "
              f"{mapping['renamed'] or 'none'}")
        if mapping["not_in_weaver_constants"]:
            print(f"  Weaver's constants lack {', '.join(mapping['not_in_weaver_constants'])}: add the lines in "
                  f"{os.path.join(args.export_weaver, ADDITIONS)} to weaver/constants.py before running Weaver")


if __name__ == "__main__":
    run_main(main)
