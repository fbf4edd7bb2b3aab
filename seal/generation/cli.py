"""The command line shared by the generator scripts: one flag per config field."""

import argparse
import dataclasses
import shutil
from pathlib import Path

from seal.files import folder_problem
from seal.generation.chunks import Interrupted


def _check_writable(parser, out: Path) -> None:
    """The output's folder must take files (the chunks, the merged file) before work starts."""
    problem = folder_problem(out.parent)
    if problem is not None:
        parser.error(f"cannot write the output {out}: {problem}")


def make_executor(args, folder: Path):
    """A submitit executor for ``--executor local|slurm`` writing its logs under ``folder``."""
    import submitit

    cluster = "slurm" if args.executor == "slurm" else "local"
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster)
    parameters = {"timeout_min": args.time, "cpus_per_task": 1, "name": args.out.stem}
    if cluster == "slurm":
        if args.partition:
            parameters["slurm_partition"] = args.partition
        if args.max_parallel:
            parameters["slurm_array_parallelism"] = args.max_parallel
    executor.update_parameters(**parameters)
    return executor


def generator_main(config_cls, generate, doc: str, unit: str) -> None:
    """Parse ``--out``, ``--processes``, ``--force`` and every field of ``config_cls``; run
    ``generate(cfg, out, processes)`` (a summary with ``made``/``seconds``/``per_s``/
    ``per_s_per_core``) unless ``out`` exists."""
    parser = argparse.ArgumentParser(
        description=doc.splitlines()[0],
        epilog=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="output HDF5 file")
    parser.add_argument("--processes", type=int, default=None, help="parallel Pythias (all cores)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    jobs = parser.add_argument_group("running the chunks as jobs (submitit)")
    jobs.add_argument(
        "--executor",
        choices=("pool", "local", "slurm"),
        default="pool",
        help="pool: a process pool on this machine (default); local: submitit "
        "jobs on this machine; slurm: a SLURM job array",
    )
    jobs.add_argument("--partition", default=None, help="slurm: the partition")
    jobs.add_argument("--time", type=int, default=60, help="minutes per job (default 60)")
    jobs.add_argument("--chunks-per-job", type=int, default=1, help="chunks each job makes")
    jobs.add_argument(
        "--max-parallel", type=int, default=None, help="slurm: at most this many array jobs at once"
    )
    jobs.add_argument(
        "--no-wait",
        action="store_true",
        help="submit and exit; rerun the same command to merge when jobs are done",
    )
    fields = dataclasses.fields(config_cls)
    for field in fields:
        flag = "--" + field.name.replace("_", "-")
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kind = {int: int, "int": int, str: str, "str": str}.get(field.type, float)
            parser.add_argument(flag, type=kind, default=field.default)
    args = parser.parse_args()
    if args.out.exists() and not args.force:
        parser.exit(0, f"{args.out} exists; --force to regenerate\n")
    try:
        cfg = config_cls(**{f.name: getattr(args, f.name) for f in fields})
    except ValueError as error:  # a setting that cannot work: said before any Pythia starts
        parser.error(str(error))
    _check_writable(parser, args.out)
    if args.chunks_per_job < 1:
        parser.error(f"--chunks-per-job must be >= 1; got {args.chunks_per_job}")
    jobs = {}
    if args.executor != "pool":
        jobs = {
            "executor": make_executor(args, args.out.with_name(args.out.name + ".jobs")),
            "chunks_per_job": args.chunks_per_job,
            "wait": not args.no_wait,
        }
    try:
        summary = generate(cfg, args.out, args.processes, **jobs)
    except Interrupted as stop:  # the chunks are kept and the resume command was printed
        raise SystemExit(128 + stop.signum) from None
    if summary is None:
        return
    if jobs:  # merged: the job logs were only needed while jobs could fail
        shutil.rmtree(args.out.with_name(args.out.name + ".jobs"), ignore_errors=True)
    if summary["made"] == 0:  # every chunk was made by an earlier run or by jobs: only merged
        import h5py

        with h5py.File(args.out) as f:
            print(f"wrote {args.out}: {len(f['labels'])} {unit} merged from chunks made earlier")
        return
    print(
        f"wrote {args.out}: {summary['made']} {unit} in {summary['seconds']:.0f} s, "
        f"{summary['per_s']:.1f} {unit}/s ({summary['per_s_per_core']:.1f} per core)"
    )
