"""The benchmark's Bulk Data export step: a full export of the largest clinic, and its memory.

    python -m bench.export [--scale 1.0] [--database-url URL] [--report bench/report]
                           [--storage local|gcs]

`make bench` runs it after the HTTP workloads (bench/run.py); run alone, it measures one export
of the dataset at `--scale` and records it in the report (`export.runs` of report.json, one per
scale, database and storage, and the last section of report.md), so exports of two sizes can be
compared.

The export runs in a child process of its own: `fhir.export.export_run`, what the Celery task
`fhir.export` runs, on a new ExportJob of the clinic's admin (Patient and DocumentReference),
through the `local` storage backend into a temporary MEDIA_ROOT, or with `--storage gcs` through
the gcs backend that the environment configures (`GCS_BUCKET_NAME`, `STORAGE_EMULATOR_HOST`, ...,
as for the app). Memory is the child's peak
resident set (`getrusage(RUSAGE_SELF).ru_maxrss`, read by the child when the export is done) and
its growth over the resident set just before the export started (VmRSS): what the export itself
held at its peak, Django and the imports excluded. The job row and the files are deleted
afterwards; the export writes no other row.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generate import (
    BASE_DIR,
    DEFAULT_DATABASE_URL,
    BenchError,
    configure_django,
    django_env,
    ensure_dataset,
    log,
)

SECTION_TITLE = "## Bulk Data export"


def _rss_kib() -> int:
    """This process's resident set now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError("no VmRSS in /proc/self/status")


def run_export(database_url: str, admin: str) -> dict[str, Any]:
    """In the child: one full export of `admin`'s clinic, measured, then removed."""
    configure_django(database_url)
    from accounts.models import User
    from document.storage import get_export_storage
    from fhir.export import EXPORT_TYPES, export_delete_files, export_run
    from fhir.models import ExportJob, ExportStatus

    user = User.objects.get(username=admin)
    job = ExportJob.objects.create(
        organization_id=user.organization_id,
        requested_by=user,
        request_url="bench",
        base_url="http://bench.invalid",
        types=list(EXPORT_TYPES),
    )
    try:
        rss_before = _rss_kib()
        started = time.perf_counter()
        export_run(job_id=job.pk)
        wall = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        job.refresh_from_db()
        if job.status != ExportStatus.COMPLETED:
            raise BenchError(f"the export ended {job.status}")
        storage = get_export_storage()
        sizes = [storage.stat(entry["object_name"]) for entry in job.output]
        counts = {entry["type"]: entry["count"] for entry in job.output}
    finally:
        # Cancelled, as a client would: its files go the way a cancelled job's go.
        ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.CANCELLED)
        export_delete_files(job_id=job.pk)
        job.delete()
    rows = sum(counts.values())
    return {
        "patients": counts.get("Patient", 0),
        "documents": counts.get("DocumentReference", 0),
        "rows": rows,
        "bytes": sum(stored.size_bytes for stored in sizes if stored is not None),
        "wall_s": round(wall, 2),
        "rows_per_s": round(rows / wall) if wall else None,
        "rss_before_mib": round(rss_before / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "peak_growth_mib": round(max(0, peak - rss_before) / 1024, 1),
    }


def measure_export(
    database_url: str, admin: str, scale: float, storage: str = "local"
) -> dict[str, Any]:
    """Runs `run_export` in a child process and returns its measurement."""
    log(f"export: full Bulk Data export of {admin}'s clinic (scale {scale:g}, {storage})")
    with tempfile.TemporaryDirectory(prefix="pms-bench-export-") as media_root:
        child = subprocess.run(  # noqa: S603 - fixed argv
            [
                sys.executable,
                "-m",
                "bench.export",
                "--database-url",
                database_url,
                "--child",
                admin,
            ],
            cwd=BASE_DIR,
            env={
                **os.environ,
                **django_env(database_url),
                "DJANGO_SETTINGS_MODULE": "pms.settings.base",
                "STORAGE_BACKEND": storage,
                "MEDIA_ROOT": media_root,
            },
            capture_output=True,
            text=True,
            check=False,
        )
    if child.returncode != 0:
        raise BenchError(f"the export step failed:\n{child.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    result = {
        "scale": scale,
        "database": database_url.rsplit("/", 1)[-1],
        "storage": storage,
    } | result
    log(
        f"export: {result['rows']:,} rows in {result['wall_s']:.1f} s "
        f"({result['rows_per_s']:,} rows/s), peak RSS {result['peak_rss_mib']} MiB "
        f"(+{result['peak_growth_mib']} MiB over {result['rss_before_mib']} MiB before)"
    )
    return result


def render_markdown(section: dict[str, Any]) -> str:
    """The report's last section: one row per measured export."""
    lines = [
        SECTION_TITLE,
        "",
        "A full export of the largest clinic (`fhir.export.export_run`, the Celery task's code), "
        "in a child process. Memory: the child's peak RSS (`ru_maxrss`) and its growth over its "
        "RSS just before the export started.",
        "",
        "| Scale | Database | Storage | Patients | Documents | Rows | MiB written | Wall s "
        "| Rows/s | RSS before MiB | Peak RSS MiB | Peak growth MiB |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in sorted(section["runs"], key=lambda run: (run["scale"], run["storage"])):
        lines.append(
            f"| {run['scale']:g} | {run['database']} | {run['storage']} | {run['patients']:,} "
            f"| {run['documents']:,} | {run['rows']:,} | {run['bytes'] / 2**20:.1f} "
            f"| {run['wall_s']:.1f} | {run['rows_per_s']:,} | {run['rss_before_mib']} "
            f"| {run['peak_rss_mib']} | {run['peak_growth_mib']} |"
        )
    return "\n".join([*lines, ""])


def record(report: Path, result: dict[str, Any]) -> None:
    """Puts `result` into the report in place of the run of the same scale, database and
    storage."""
    json_path, markdown_path = report.with_suffix(".json"), report.with_suffix(".md")
    report.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(json_path.read_text()) if json_path.exists() else {}

    def key(run: dict[str, Any]) -> tuple[Any, ...]:
        return run["scale"], run["database"], run.get("storage", "local")

    runs = [run for run in data.get("export", {}).get("runs", []) if key(run) != key(result)]
    data["export"] = {"runs": [*runs, result]}
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    markdown = markdown_path.read_text() if markdown_path.exists() else ""
    kept = markdown.split(f"\n{SECTION_TITLE}\n")[0].rstrip("\n")
    markdown_path.write_text("\n\n".join(filter(None, [kept, render_markdown(data["export"])])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The benchmark's Bulk Data export step")
    env = os.environ.get
    parser.add_argument("--database-url", default=env("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--scale", type=float, default=float(env("BENCH_SCALE", "1.0")))
    parser.add_argument("--report", default=env("BENCH_REPORT", str(BASE_DIR / "bench/report")))
    parser.add_argument("--storage", choices=["local", "gcs"], default="local")
    parser.add_argument("--child", metavar="ADMIN", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        print(json.dumps(run_export(options.database_url, options.child)))
        return 0
    try:
        dataset = ensure_dataset(options.database_url, options.scale)
        largest = dataset["organizations"][0]
        result = measure_export(
            options.database_url, largest["admin"], options.scale, options.storage
        )
    except BenchError as error:
        log(str(error))
        return 2
    record(Path(options.report), result)
    log(f"recorded in {Path(options.report).with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
