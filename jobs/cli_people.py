"""`archivist people …`: who appears where, and a curator's names, merges, splits and opt-outs.

Every write is a curator's row (`catalog.people`): who (`--curator`, else ARCHIVIST_CURATOR, else
the login name), when, what, the value before; no later run undoes it. Bad input is one line on
stderr and exit status 2, with nothing written.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from catalog.settings import Settings

EXIT_USAGE = 2
F = TypeVar("F", bound=Callable[..., Any])

people_app = typer.Typer(
    no_args_is_help=True, help="People across the archive: list them, name, merge, split or opt them out."
)
out = Console()
err = Console(stderr=True)

Curator = Annotated[
    str | None,
    typer.Option(help="who is acting (default: ARCHIVIST_CURATOR, else the login name)", show_default=False),
]
Note = Annotated[str | None, typer.Option(help="why, for the history")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


def _refusing(command: F) -> F:
    """A curator's mistake (no such person, a bad name) is one line and exit status 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from catalog.people import PeopleError, UnknownPersonError

        try:
            return command(*args, **kwargs)
        except (PeopleError, UnknownPersonError) as exc:
            if os.environ.get("ARCHIVIST_DEBUG"):
                raise
            err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None

    return wrapper  # type: ignore[return-value]


def _catalog() -> Any:
    from catalog.iceberg import open_catalog

    return open_catalog(Settings())


def _curator(given: str | None) -> str:
    if given is not None:
        return given
    try:
        return os.environ.get("ARCHIVIST_CURATOR") or getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return ""


def _print_row(row: dict[str, Any], as_json: bool, said: str) -> None:
    if as_json:
        print(json.dumps(row, default=str))
    else:
        out.print(said, highlight=False)


@people_app.command("list")
@_refusing
def list_command(
    as_json: AsJson = False,
    name: Annotated[str | None, typer.Option(help="only people a curator gave exactly this name")] = None,
) -> None:
    """Every person with an appearance: id, name (where a curator gave one), appearances, shots, assets."""
    from catalog.people import find_people, list_people

    catalog = _catalog()
    people = find_people(catalog, name) if name is not None else list_people(catalog)
    if as_json:
        print(json.dumps([p.as_dict() for p in people], default=str))
        return
    table = Table(title=f"{len(people)} people")
    for column in ("person", "name", "appearances", "shots", "assets", "merged", "excluded"):
        table.add_column(column, justify="right" if column in ("appearances", "shots", "assets") else "left")
    for p in people:
        table.add_row(
            p.person_id,
            p.name or "",
            str(p.appearances),
            str(p.shots),
            str(p.assets),
            ", ".join(p.merged),
            "excluded" if p.excluded else "",
        )
    out.print(table)


@people_app.command("show")
@_refusing
def show_command(person_id: str, as_json: AsJson = False) -> None:
    """One person: every appearance (asset, shot, time, box) and what curators did."""
    from catalog.people import person_detail

    detail = person_detail(_catalog(), person_id)
    if as_json:
        print(json.dumps(detail.as_dict(), default=str))
        return
    p = detail.person
    said = f" «{p.name}» (named by {p.named_by})" if p.name else " (unnamed)"
    out.print(f"{p.person_id}{said}{' — excluded' if p.excluded else ''}", highlight=False)
    table = Table(title=f"{p.appearances} appearances in {p.shots} shots of {p.assets} assets")
    for column in ("track", "asset", "shot", "from s", "to s", "box"):
        table.add_column(column)
    for a in detail.appearances:
        table.add_row(
            a.track_id,
            a.asset_id[:12],
            a.shot_id,
            f"{a.start_s or 0:.2f}",
            f"{a.end_s or 0:.2f}",
            ",".join(f"{v:.0f}" for v in a.box),
        )
    out.print(table)
    for row in detail.history:
        out.print(f"{row['at']}  {row['curator']}: {row['action']} {row['value'] or ''}", highlight=False)


@people_app.command("name")
@_refusing
def name_command(
    person_id: str, name: str, curator: Curator = None, note: Note = None, as_json: AsJson = False
) -> None:
    """Name a person (the name reaches every appearance, the search and the exports)."""
    from catalog.people import name_person

    row = name_person(_catalog(), person_id, name, curator=_curator(curator), note=note)
    _print_row(
        row, as_json, f"{row['cluster_id']} is now named «{row['value']}» (was {row['before'] or 'unnamed'})"
    )


@people_app.command("merge")
@_refusing
def merge_command(
    person_id: str, other_id: str, curator: Curator = None, note: Note = None, as_json: AsJson = False
) -> None:
    """Make OTHER_ID part of PERSON_ID (its appearances, and its name where PERSON_ID has none)."""
    from catalog.people import merge_people

    row = merge_people(_catalog(), person_id, other_id, curator=_curator(curator), note=note)
    _print_row(row, as_json, f"{row['cluster_id']} is now part of {row['value']}")


@people_app.command("split")
@_refusing
def split_command(
    person_id: str,
    track_ids: Annotated[list[str], typer.Argument(help="the appearances (track ids) that leave")],
    curator: Curator = None,
    note: Note = None,
    as_json: AsJson = False,
) -> None:
    """Move some appearances of a person to a new person (`archivist people show ID` lists them)."""
    from catalog.people import split_person

    row = split_person(_catalog(), person_id, track_ids, curator=_curator(curator), note=note)
    _print_row(row, as_json, f"{len(track_ids)} appearances of {person_id} are now {row['new_person_id']}")


@people_app.command("exclude")
@_refusing
def exclude_command(
    person_id: str,
    curator: Curator = None,
    note: Note = None,
    include: Annotated[bool, typer.Option("--include", help="take an opt-out back")] = False,
    as_json: AsJson = False,
) -> None:
    """Opt a person out of face search and the exports (kept in the catalog, honoured everywhere)."""
    from catalog.people import exclude_person

    row = exclude_person(_catalog(), person_id, curator=_curator(curator), excluded=not include, note=note)
    said = "included again" if include else "excluded from search and exports"
    _print_row(row, as_json, f"{row['cluster_id']} is {said}")
