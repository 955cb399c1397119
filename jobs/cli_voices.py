"""`archivist voices …`: the archive's voices (speakers grouped across assets), and a curator's
names, merges and opt-outs of them.

Every write is a curator's row (`catalog.voices`: who, when, the value before), which no later run
undoes; a name labels the voice's lines in every WebVTT transcript and finds the shots it speaks in
(`archivist search --text NAME`). Bad input is one line on stderr and exit status 2, with nothing
written (the people commands' rule, `jobs.cli_people._refusing`).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobs.cli_people import AsJson, Curator, Note, _catalog, _curator, _print_row, _refusing

voices_app = typer.Typer(
    no_args_is_help=True, help="Voices across the archive: list or show them, name, merge or opt one out."
)
out = Console()
VoiceId = Annotated[str, typer.Argument(help="the voice, e.g. V000001")]


@voices_app.command("list")
@_refusing
def list_command(as_json: AsJson = False) -> None:
    """Every voice, most heard first: id, name, speakers, assets, seconds of speech."""
    from catalog.voices import list_voices

    voices = list_voices(_catalog())
    if as_json:
        print(json.dumps(voices))
        return
    table = Table("voice", "name", "speakers", "assets", "seconds", "merged", "opted out")
    for v in voices:
        table.add_row(
            v["voice_id"],
            v["name"] or "unnamed",
            str(v["speakers"]),
            str(v["assets"]),
            f"{v['seconds']:.1f}",
            ", ".join(v["merged"]),
            "yes" if v["excluded"] else "",
        )
    out.print(table)


@voices_app.command("show")
@_refusing
def show_command(voice_id: VoiceId, as_json: AsJson = False) -> None:
    """One voice: each speaker it is (asset, label, seconds, turns) and what curators did."""
    from catalog.voices import voice_detail

    detail = voice_detail(_catalog(), voice_id)
    if as_json:
        print(json.dumps(detail, default=str))
        return
    said = f" «{detail['name']}»" if detail["name"] else " (unnamed)"
    out.print(f"{detail['voice_id']}{said}{' — opted out' if detail['excluded'] else ''}", highlight=False)
    table = Table("asset", "speaker", "seconds", "turns", title=f"{detail['speakers']} speakers")
    for s in detail["speaker_list"]:
        turns = ", ".join(f"{t['start_s']:.1f}–{t['end_s']:.1f}" for t in s["turns"])
        table.add_row(s["asset_id"][:12], s["speaker"], f"{s['seconds'] or 0:.1f}", turns)
    out.print(table)
    for row in detail["history"]:
        out.print(f"{row['at']}  {row['curator']}: {row['action']} {row['value'] or ''}", highlight=False)


@voices_app.command("name")
@_refusing
def name_command(
    voice_id: VoiceId,
    name: Annotated[str, typer.Argument(help="the name its lines are labelled with")],
    curator: Curator = None,
    note: Note = None,
    as_json: AsJson = False,
) -> None:
    """Name a voice: its lines in every transcript are labelled with the name, and the search finds
    the shots it speaks in by it, from now on."""
    from catalog.voices import name_voice

    row = name_voice(_catalog(), voice_id, name, curator=_curator(curator), note=note)
    _print_row(row, as_json, f"{row['cluster_id']} is named {row['value']!r}")


@voices_app.command("merge")
@_refusing
def merge_command(
    voice_id: VoiceId,
    other_id: Annotated[str, typer.Argument(help="the voice that becomes part of VOICE_ID")],
    curator: Curator = None,
    note: Note = None,
    as_json: AsJson = False,
) -> None:
    """Make OTHER_ID part of VOICE_ID (its speakers, and its name where VOICE_ID has none)."""
    from catalog.voices import merge_voices

    row = merge_voices(_catalog(), voice_id, other_id, curator=_curator(curator), note=note)
    _print_row(row, as_json, f"{row['cluster_id']} is now part of {row['value']}")


@voices_app.command("exclude")
@_refusing
def exclude_command(
    voice_id: VoiceId,
    undo: Annotated[bool, typer.Option("--undo", help="take the opt-out back")] = False,
    curator: Curator = None,
    note: Note = None,
    as_json: AsJson = False,
) -> None:
    """Opt a voice out: its lines carry no name or id in transcripts and exports, and its name finds
    nothing in search."""
    from catalog.voices import exclude_voice

    row = exclude_voice(_catalog(), voice_id, curator=_curator(curator), excluded=not undo, note=note)
    _print_row(row, as_json, f"{row['cluster_id']} is {'opted back in' if undo else 'opted out'}")
