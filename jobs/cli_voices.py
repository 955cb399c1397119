"""`archivist voices …`: the archive's voices (speakers grouped across assets), and naming one.

A name is a curator's row (`catalog.voices.name_voice`: who, when, the name before), which no later
run undoes; it labels the voice's lines in every WebVTT transcript. Bad input is one line on
stderr and exit status 2, with nothing written.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobs.cli_people import EXIT_USAGE, AsJson, Curator, Note, _catalog, _curator

voices_app = typer.Typer(
    no_args_is_help=True, help="Voices across the archive: list them, name one, or opt one out."
)
out = Console()
err = Console(stderr=True)


@voices_app.command("list")
def list_command(as_json: AsJson = False) -> None:
    """Every voice, most heard first: id, name, speakers, assets, seconds of speech."""
    from catalog.voices import list_voices

    voices = list_voices(_catalog())
    if as_json:
        print(json.dumps(voices))
        return
    table = Table("voice", "name", "speakers", "assets", "seconds", "opted out")
    for v in voices:
        excluded = "yes" if v["excluded"] else ""
        table.add_row(
            v["voice_id"],
            v["name"] or "unnamed",
            str(v["speakers"]),
            str(v["assets"]),
            f"{v['seconds']:.1f}",
            excluded,
        )
    out.print(table)


@voices_app.command("name")
def name_command(
    voice_id: Annotated[str, typer.Argument(help="the voice, e.g. V000001")],
    name: Annotated[str, typer.Argument(help="the name its lines are labelled with")],
    curator: Curator = None,
    note: Note = None,
    as_json: AsJson = False,
) -> None:
    """Name a voice: its lines in every transcript are labelled with the name from now on."""
    from catalog.voices import UnknownVoiceError, VoicesError, name_voice

    try:
        row = name_voice(_catalog(), voice_id, name, curator=_curator(curator), note=note)
    except (VoicesError, UnknownVoiceError) as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        print(json.dumps(row, default=str))
    else:
        out.print(f"{row['cluster_id']} is named {row['value']!r}", highlight=False)


@voices_app.command("exclude")
def exclude_command(
    voice_id: Annotated[str, typer.Argument(help="the voice, e.g. V000001")],
    undo: Annotated[bool, typer.Option("--undo", help="take the opt-out back")] = False,
    curator: Curator = None,
    note: Note = None,
    as_json: AsJson = False,
) -> None:
    """Opt a voice out: its lines carry no name or id in transcripts and exports."""
    from catalog.voices import UnknownVoiceError, VoicesError, exclude_voice

    try:
        row = exclude_voice(_catalog(), voice_id, curator=_curator(curator), excluded=not undo, note=note)
    except (VoicesError, UnknownVoiceError) as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        print(json.dumps(row, default=str))
    else:
        out.print(f"{row['cluster_id']} is {'opted back in' if undo else 'opted out'}", highlight=False)
