"""The `archivist` command: what an archive team types."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from catalog.schema import VISUAL_SPACE
from catalog.settings import Settings
from exports.run import export_command
from indexes.defaults import DEFAULT_TOP, DIVERSITY, DIVERSITY_HELP, FAIRNESS, FAIRNESS_HELP, MAX_TOP
from jobs.cli_catalog import expire_command
from jobs.cli_estimate import estimate_command
from jobs.cli_people import people_app
from jobs.cli_train import TRAIN_COMMANDS
from jobs.cli_voices import voices_app
from jobs.errors import SpecError

if TYPE_CHECKING:
    from jobs.spec import JobSpec

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
index_app = typer.Typer(no_args_is_help=True, help="Build and inspect search indexes.")
app.add_typer(index_app, name="index")
DEMO_QUERY = "people riding bicycles"
train_app = typer.Typer(no_args_is_help=True, help="Train the project's own models (reproducibly, seeded).")
app.add_typer(train_app, name="train")
jobs_app = typer.Typer(no_args_is_help=True, help="Scheduled jobs and past runs.")
app.add_typer(jobs_app, name="jobs")
app.command("export")(export_command)
catalog_app = typer.Typer(no_args_is_help=True, help="Look after the catalog: what it keeps, and how long.")
app.add_typer(catalog_app, name="catalog")
app.add_typer(people_app, name="people")
app.add_typer(voices_app, name="voices")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0  # the run completed and every asset is ok
EXIT_CRASH = 1  # the run raised (an unhandled error: Python's own status)
EXIT_USAGE = 2  # a usage or job spec error the user can act on: nothing ran
EXIT_PROBLEMS = 3  # the run completed with failed or damaged assets or failed outputs


@app.callback()
def main() -> None:
    """Restore, describe and search a media archive."""
    from jobs.logs import configure

    configure()


def _user_errors() -> tuple[type[BaseException], ...]:
    from actors.models import ModelLoadError
    from catalog.locks import JobBusyError
    from catalog.query import QueryError
    from indexes.faiss_backend import FaissInstallError
    from indexes.query_image import QueryImageError
    from indexes.recommend import UnknownUserError
    from indexes.search import UnknownShotError
    from indexes.store import IndexMissingError
    from jobs.discover import SourceError
    from serve.auth import BindingError

    return (
        SpecError,
        SourceError,
        QueryError,
        JobBusyError,
        IndexMissingError,
        UnknownShotError,
        ModelLoadError,
        FaissInstallError,
        QueryImageError,
        UnknownUserError,
        BindingError,
        FileNotFoundError,
    )


def friendly(command: F) -> F:
    """Errors the user can act on become one clear message and exit status 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except _user_errors() as exc:
            if os.environ.get("ARCHIVIST_DEBUG"):
                raise
            err.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
            raise typer.Exit(EXIT_USAGE) from None

    return wrapper  # type: ignore[return-value]


catalog_app.command("expire")(friendly(expire_command))
app.command("estimate")(friendly(estimate_command))
for _name, _command in TRAIN_COMMANDS.items():
    train_app.command(_name)(friendly(_command))


def _spec_for(target: str) -> JobSpec:
    from jobs.spec import default_spec, load_spec, parse_spec_text

    if target == "-":
        return parse_spec_text(sys.stdin.read(), origin="<stdin>")
    path = Path(target)
    if path.suffix.lower() in (".yaml", ".yml"):
        return load_spec(path)
    return default_spec(target)


_real_stdout: int | None = None
"""The process's standard output, once `--json` has pointed fd 1 at standard error."""


@contextmanager
def _stdout_kept_for_json() -> Iterator[Callable[[str], None]]:
    """While inside, everything written to standard output (Ray and its workers, logging, rich,
    progress bars, third-party prints) goes to standard error; the writer yielded puts a document
    on the real standard output. Where stdout is a file descriptor, fd 1 is pointed at fd 2 and
    stays there until the process exits: Ray's threads and workers may still print after the run."""
    global _real_stdout
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        real = sys.stdout  # not a file (a test runner's buffer): only the Python object is swapped

        def write_real(text: str) -> None:
            real.write(text)
            real.flush()

        with redirect_stdout(sys.stderr):
            yield write_real
        return
    if _real_stdout is None:
        _real_stdout = os.dup(fd)
        os.dup2(sys.stderr.fileno(), fd)
    saved = _real_stdout

    def write(text: str) -> None:
        data = text.encode()
        while data:
            data = data[os.write(saved, data) :]

    with redirect_stdout(sys.stderr):
        yield write


def _run_and_report(specs: Sequence[JobSpec], as_json: bool) -> list[dict[str, Any]]:
    """Run the jobs one after another and show each summary: tables and a last line saying how
    it went, or (with `--json`) one JSON document alone on standard output: the summary of a
    single run, `{"runs": [...]}` for several."""
    from jobs import report
    from jobs.run import run_job

    if as_json:
        summaries: list[dict[str, Any]] = []
        with _stdout_kept_for_json() as write:
            for spec in specs:
                try:
                    summaries.append(run_job(spec))
                except Exception as exc:  # still one document: what went wrong (the status says 2 or 1)
                    failed = {"job": spec.name, "outcome": "error", "error": f"{type(exc).__name__}: {exc}"}
                    write(json.dumps(failed if len(specs) == 1 else {"runs": [*summaries, failed]}) + "\n")
                    raise
            document = summaries[0] if len(specs) == 1 else {"runs": summaries}
            write(json.dumps(document, indent=2, default=str) + "\n")
        return summaries
    summaries = []
    for spec in specs:
        summary = run_job(spec)
        report.run_summary(summary, out)
        if summary["remasters"]:
            report.remasters_table(summary["remasters"], out)
        if summary.get("audit"):
            report.audit_line(summary["audit"], out)
        report.outcome_line(summary, out)
        summaries.append(summary)
    return summaries


def _exit_for(summaries: list[dict[str, Any]]) -> None:
    """Exit status 3 where a run completed with failed or damaged assets or failed outputs."""
    if any(summary.get("outcome") != "ok" for summary in summaries):
        raise typer.Exit(EXIT_PROBLEMS)


@app.command()
@friendly
def run(
    target: Annotated[
        str,
        typer.Argument(
            help="a job spec (.yaml, or - for standard input), or a folder / URL to run the "
            "default pipeline over"
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="print the summary as one JSON document, alone on stdout")
    ] = False,
    retry_failed: Annotated[bool, typer.Option(help="process again assets that failed before")] = False,
) -> None:
    """Run a job: discover → segment → understand → commit → index.

    Exit status: 0 every asset ok; 3 the run completed, but assets failed or are damaged, or
    outputs failed (its last line says how many); 2 a usage or job spec error (nothing ran);
    1 the run crashed.
    """
    spec = _spec_for(target)
    if retry_failed:
        spec = spec.model_copy(update={"retry_failed": True})
    _exit_for(_run_and_report([spec], as_json))


@app.command()
@friendly
def demo(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Describe the bundled sample footage, remaster the low-resolution clip, audit, then search."""
    from jobs.samples import DEMO_FILES, DEMO_REMASTER, sample_folder
    from jobs.spec import only_stages, parse_spec

    describe = parse_spec(
        {"name": "demo", "source": {"uri": str(sample_folder()), "include": list(DEMO_FILES)}},
        origin="archivist demo",
    )
    # Upscaling 720p footage on a CPU takes long; the 640x272 clip shows it in a minute or two.
    # Only the remaster stage runs: the clip's shots and tags from the first run stay as they are.
    remaster = parse_spec(
        {
            "name": "demo-remaster",
            "source": {"uri": str(sample_folder()), "include": [DEMO_REMASTER]},
            "stages": only_stages(remaster={"restore": "auto", "upscale": 2}),
            "audit": {},
        },
        origin="archivist demo",
    )
    summaries = _run_and_report([describe, remaster], as_json)
    if as_json:
        _exit_for(summaries)
        return
    from catalog.iceberg import open_catalog
    from catalog.query import sql as run_sql
    from indexes.query import QueryEngine
    from jobs import report

    settings = Settings()
    catalog = open_catalog(settings)
    engine = QueryEngine(settings, catalog)
    out.print(f"\nA sample search: [bold]archivist search --text {DEMO_QUERY!r} --top 3[/bold]")
    _print_result(engine.by_text(DEMO_QUERY, top=3), as_json=False)
    first = run_sql(catalog, "SELECT shot_id FROM shots ORDER BY asset_id, shot_index LIMIT 1")
    if first.num_rows:
        shot = first["shot_id"][0].as_py()
        out.print(f"\nShots like another: [bold]archivist search --like {shot} --top 3[/bold]")
        _print_result(engine.by_shot(shot, top=3), as_json=False)
    report.arrow_table(
        run_sql(
            catalog, "SELECT status, count(*) AS assets, sum(shot_count) AS shots FROM assets GROUP BY status"
        ),
        out,
        title="the catalog now",
    )
    for summary in summaries:  # the demo ends saying how its runs went, as each run does
        report.outcome_line(summary, out)
    _exit_for(summaries)


@app.command()
@friendly
def remaster(
    target: Annotated[str, typer.Argument(help="a file, a folder or an fsspec URL of footage")],
    out_uri: Annotated[
        str | None, typer.Option("--out", help="where the outputs go (folder or s3://); default: the home")
    ] = None,
    restore: Annotated[str, typer.Option(help="auto, off, or operations: deflicker,denoise,dust,…")] = "auto",
    upscale: Annotated[int, typer.Option(help="1, 2 or 4")] = 2,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Restore and upscale footage into masters and access copies, as a one-off run.

    Exit status: 0 every output made; 3 the run completed, but assets failed or are damaged, or
    outputs failed; 2 a usage error (nothing ran); 1 the run crashed.
    """
    from jobs.spec import only_stages, parse_spec

    # Only the remaster stage runs: a commit replaces what the run's stages own, so the
    # asset's shots, tags and vectors from describing runs stay as they are.
    remaster = {"restore": restore, "upscale": upscale, "out": out_uri}
    spec = parse_spec(
        {"name": "remaster", "source": {"uri": target}, "stages": only_stages(remaster=remaster)},
        origin="archivist remaster",
    )
    _exit_for(_run_and_report([spec], as_json))


@app.command()
@friendly
def stages(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every stage a job spec can run: its section, what it reads, writes and owns, its parameters."""
    from jobs import report
    from jobs.stage_docs import stage_reference

    reference = stage_reference()
    if as_json:
        print(json.dumps(reference, indent=2, default=str))
    else:
        report.stage_reference(reference, out)


@app.command()
@friendly
def qc(
    target: Annotated[str, typer.Argument(help="a file or URL to check now, or a checked asset's id")],
    as_json: Annotated[bool, typer.Option("--json", help="print the record as one JSON document")] = False,
) -> None:
    """The preservation QC record of a file (measured now, no Ray) or of an asset (from the catalog)."""
    import re

    from actors.qc import inspect_file, record_lines

    if "://" in target or Path(target).exists():
        record: dict[str, Any] = {"uri": target, **inspect_file(target)}
    elif re.fullmatch(r"[0-9a-f]{6,64}", target):
        from catalog.iceberg import open_catalog
        from catalog.iceberg import read as read_table

        rows = read_table(open_catalog(Settings()), "qc").to_pylist()
        found = [r for r in rows if r["asset_id"] == target or r["asset_id"].startswith(target)]
        if len(found) != 1:
            why = "no QC record for asset" if not found else "more than one asset starts with"
            err.print(f"[bold red]error:[/bold red] {why} {target} (run a job with stages.qc enabled)")
            raise typer.Exit(2)
        record = found[0]
    else:
        raise FileNotFoundError(f"{target}: no such file, and not an asset id")
    if as_json:
        print(json.dumps(record, default=str))
        return
    from rich.table import Table

    table = Table(title=f"QC of {record.get('asset_id') or record.get('uri')}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for what, value in record_lines(record):
        table.add_row(what, value)
    out.print(table)


@app.command()
@friendly
def sql(
    query: Annotated[str, typer.Argument(help="SQL over the tables assets, shots, tags, embeddings, …")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_csv: Annotated[bool, typer.Option("--csv")] = False,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="the catalog as a run left it (its id) or as it stood at an ISO time"),
    ] = None,
) -> None:
    """Query the catalog with DuckDB, every table at one catalog version (the latest, or --as-of).

    A version is the whole of a completed run's commits, so a join never mixes two runs."""
    from catalog.iceberg import open_catalog
    from catalog.query import sql as run_sql
    from jobs import report

    rows = run_sql(open_catalog(Settings()), query, as_of=as_of)
    if as_json:
        print(report.as_json(rows))
    elif as_csv:
        sys.stdout.write(report.as_csv(rows))
    else:
        report.arrow_table(rows, out)


FilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="KEY=VALUE: asset, min_duration, max_duration, tag, object, has_faces, safe, monochrome, "
        "after, before (repeat for several)",
    ),
]


def _filters(pairs: list[str] | None) -> Any:
    from indexes.filters import FilterError, Filters

    split = [pair.partition("=") for pair in pairs or []]
    bad = [key for key, sign, _ in split if not sign]
    if bad:
        raise FilterError(f"a filter is KEY=VALUE, not {bad[0]!r}")
    return Filters.from_pairs((key.strip(), value.strip()) for key, _, value in split)


def _print_result(result: Any, *, as_json: bool) -> None:

    from jobs import report

    rows = [h.to_dict() for h in result.hits]
    if as_json:
        print(json.dumps({"hits": rows, "meta": result.meta}, indent=2, default=str))
        return
    report.hits_table(rows, out)
    for note in result.meta.get("notes", []):
        err.print(f"note: {note}", highlight=False)


@app.command()
@friendly
def search(
    text: Annotated[str | None, typer.Option(help="find shots described by these words")] = None,
    image: Annotated[Path | None, typer.Option(help="find shots that look like this image")] = None,
    like: Annotated[str | None, typer.Option(help="find shots like this shot id")] = None,
    filters: FilterOption = None,
    top: Annotated[int, typer.Option(min=1, max=MAX_TOP)] = DEFAULT_TOP,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Search the archive by words, by an image or by another shot."""
    from indexes.query import QueryEngine
    from indexes.query_image import decode_query_image

    if sum(x is not None for x in (text, image, like)) != 1:
        raise SpecError("give exactly one of --text WORDS, --image PATH or --like SHOT_ID")
    where = _filters(filters)
    engine = QueryEngine(Settings())
    if text is not None:
        result = engine.by_text(text, top=top, filters=where, people=True)
    elif like is not None:
        result = engine.by_shot(like, top=top, filters=where)
    else:
        assert image is not None  # exactly one of the three was given
        result = engine.by_image(decode_query_image(image.read_bytes()), top=top, filters=where)
    _print_result(result, as_json=as_json)


@app.command()
@friendly
def recommend(
    user: Annotated[
        str | None, typer.Option(help="shots for this user, from their views, likes and saves")
    ] = None,
    like: Annotated[str | None, typer.Option(help="more shots like this shot id")] = None,
    filters: FilterOption = None,
    top: Annotated[int, typer.Option(min=1, max=MAX_TOP)] = DEFAULT_TOP,
    diversity: Annotated[float, typer.Option(min=0, max=1, help=DIVERSITY_HELP)] = DIVERSITY,
    fairness: Annotated[float, typer.Option(min=0, max=1, help=FAIRNESS_HELP)] = FAIRNESS,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recommend shots: more like one shot, or for a user; varied and spread over works."""
    from indexes.query import QueryEngine
    from indexes.recommend import for_you, more_like_this

    if (user is None) == (like is None):
        raise SpecError("give exactly one of --user USER_ID or --like SHOT_ID")
    engine = QueryEngine(Settings())
    options = {"top": top, "diversity": diversity, "fairness": fairness, "filters": _filters(filters)}
    if like is not None:
        result = more_like_this(engine, like, **options)
    else:
        assert user is not None  # exactly one of the two was given
        result = for_you(engine, user, **options)
    _print_result(result, as_json=as_json)
    if not as_json:
        shown, before = result.meta["exposure"], result.meta["exposure_before_rerank"]
        err.print(
            f"{shown['assets']} works, coverage {shown['coverage']:.2f}, exposure Gini {shown['gini']:.2f} "
            f"(without re-ranking: {before['assets']} works, Gini {before['gini']:.2f})",
            highlight=False,
        )


@app.command()
@friendly
def serve(
    host: Annotated[
        str, typer.Option(help="address to listen on; beyond loopback needs ARCHIVIST_API_TOKEN")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    root_path: Annotated[
        str, typer.Option(help="the path a reverse proxy serves this under (/archive); links follow it")
    ] = "",
    forwarded_allow_ips: Annotated[
        str, typer.Option(help="proxies whose X-Forwarded-For/-Proto are believed (comma-separated, or *)")
    ] = "127.0.0.1",
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="server processes (a query is CPU-bound: up to one per core)")
    ] = 1,
) -> None:
    """Serve search, recommendations, media and metrics over HTTP (OpenAPI docs at /docs).

    Behind a reverse proxy, see the README's "Behind a reverse proxy"."""
    import uvicorn

    from serve.app import SERVED_HOST, served_app
    from serve.auth import check_binding

    settings = Settings()
    check_binding(host, settings.api_token)  # refused here, once, not in every worker
    os.environ[SERVED_HOST] = host
    uvicorn.run(
        f"{served_app.__module__}:{served_app.__name__}",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
        root_path=root_path.rstrip("/"),
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
    )


@app.command()
@friendly
def audit(
    run_id: Annotated[str, typer.Argument(help="the run to audit (see: archivist jobs history)")],
    config: Annotated[
        Path | None, typer.Option(help="audit settings: YAML, its top level or its `audit` section")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Audit a run: identity drift, manipulation, provenance, bias; rows into `audits`, an HTML report."""
    from jobs.audit.config import load_config
    from jobs.audit.run import audit_run

    summary = audit_run(Settings(), run_id, load_config(config))
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"audit of run {run_id}")
    for column in ("audit", "checks", "flagged"):
        table.add_column(column)
    for name, counts in summary["audits"].items():
        flagged = f"[bold red]{counts['flagged']}[/bold red]" if counts["flagged"] else "0"
        table.add_row(name, str(counts["checked"]), flagged)
    out.print(table)
    for finding in summary["flagged"]:
        out.print(f"[red]flagged[/red] {finding['audit']}: {finding['subject']} ({finding['metric']})")
    if "report" in summary:
        out.print(f"report: {summary['report']}")


@index_app.command("build")
@friendly
def index_build(space: Annotated[str, typer.Option(help="embedding space")] = VISUAL_SPACE) -> None:
    """Build the index of a space from the current catalog snapshot and switch queries to it."""
    from catalog.iceberg import open_catalog
    from indexes.build import build_index

    settings = Settings()
    version = build_index(open_catalog(settings), settings, space=space)
    if version is None:
        raise SpecError(f"the catalog has no {space} embeddings yet: run a job first")
    out.print(f"built {version.space} index of {version.count} vectors from snapshot {version.snapshot_id}")


@app.command()
@friendly
def submit(
    spec: Annotated[Path, typer.Argument(help="the job spec to run on the cluster")],
    address: Annotated[str, typer.Option(help="the Ray dashboard of the cluster, e.g. http://head:8265")],
    wait: Annotated[bool, typer.Option(help="wait for the job to end and print its logs")] = False,
) -> None:
    """Submit a run as a Ray Job, with this project as its working directory."""
    from jobs.spec import load_spec
    from jobs.submit import submit as submit_job

    text = spec.read_text() if spec.exists() else None
    if text is None:
        raise SpecError(f"{spec}: no such job spec")
    load_spec(spec)  # refuse a broken spec here, not on the cluster
    result = submit_job(text, address, wait=wait)
    out.print(f"submitted {result['job_id']} to {address}: {result['status']}")
    if wait:
        print(result["logs"])
        if result["status"] != "SUCCEEDED":
            raise typer.Exit(1)


SpecPaths = Annotated[list[Path], typer.Argument(help="job spec files, or folders of them")]


@app.command()
@friendly
def scheduler(
    specs: SpecPaths,
    run_now: Annotated[bool, typer.Option(help="also run every job once at start")] = False,
    for_seconds: Annotated[
        float | None, typer.Option(help="stop after this long (default: run until killed)")
    ] = None,
) -> None:
    """Run the job specs that carry a schedule, unattended, until stopped."""
    import signal
    import threading

    from jobs.scheduler import build_scheduler, scheduled_jobs

    jobs = scheduled_jobs(specs)
    if not jobs:
        raise SpecError("none of these specs has a schedule section: nothing to run")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    from catalog.races import tolerate_first_use_race

    runner = build_scheduler(Settings(), jobs, run_now=run_now)
    tolerate_first_use_race(runner.start)
    for job in jobs:
        when = f"{job.next_run():%Y-%m-%d %H:%M %Z}"
        cron = job.spec.schedule.cron if job.spec.schedule else ""  # scheduled jobs all have one
        err.print(f"scheduled {job.spec.name}: '{cron}', next at {when}")
    stop.wait(for_seconds)
    runner.shutdown(wait=True)


@jobs_app.command("list")
@friendly
def jobs_list(specs: SpecPaths) -> None:
    """Scheduled jobs: their schedule, next run and last run."""
    from rich.table import Table

    from catalog.state import StateStore
    from jobs.scheduler import scheduled_jobs

    state = StateStore(Settings().catalog_url_resolved)
    table = Table(title="scheduled jobs")
    for column in ("job", "cron", "next run", "last run", "last status"):
        table.add_column(column)
    for job in scheduled_jobs(specs):
        last = state.runs(job=job.spec.name, limit=1)
        schedule = job.spec.schedule
        table.add_row(
            job.spec.name,
            f"{schedule.cron} ({schedule.timezone})" if schedule else "",
            f"{job.next_run():%Y-%m-%d %H:%M %Z}",
            f"{last[0].started_at:%Y-%m-%d %H:%M}" if last else "never",
            last[0].status if last else "",
        )
    out.print(table)


@jobs_app.command("history")
@friendly
def jobs_history(
    job: Annotated[str | None, typer.Option(help="only this job")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Past runs, newest first: status, duration, per-stage counts and seconds."""
    from catalog.state import StateStore
    from jobs import report

    runs = StateStore(Settings().catalog_url_resolved).runs(job=job, limit=limit)
    rows = [report.run_row(run) for run in runs]
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        report.runs_table(rows, out)


if __name__ == "__main__":
    app()
