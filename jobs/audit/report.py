"""The audit as an analyst reads it: one self-contained HTML page, findings first, in plain words.

No charting library can be had offline here, and inline SVG is kept for
nothing; the charts are HTML and CSS: each estimate is a dot on a 0-100 %
(or distance) track, its confidence interval a bar, the reference a tick,
and the tolerance around the reference a shaded band, so "does the interval
clear the band?" is what the eye sees. Evidence crops are embedded, so the
page can be mailed or opened from object storage on its own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import jinja2

NOTICE = (
    "Perceived gender, age band and skin-tone group are estimates a model makes from pixels. They are "
    "not facts about anyone, they are wrong for some people, and archivist uses them only in aggregate, "
    "as shares of many faces, to check its own catalog and search for skew. No per-person attribute is "
    "shown here, in search results or in the API."
)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _bar(
    value: float | None,
    low: float | None,
    high: float | None,
    *,
    reference: float | None = None,
    tolerance: float | None = None,
    scale: float = 1.0,
) -> dict[str, Any]:
    """Positions (in % of the track) of the dot, interval, reference tick and tolerance band."""

    def at(v: float | None) -> float | None:
        return None if v is None else max(0.0, min(100.0, 100.0 * v / scale))

    band = None
    if reference is not None and tolerance is not None:
        left, right = at(reference - tolerance), at(reference + tolerance)
        band = (left, (right or 0) - (left or 0))
    ci = None if low is None or high is None else (at(low), (at(high) or 0) - (at(low) or 0))
    return {"dot": at(value), "ci": ci, "ref": at(reference), "band": band}


def _short(uri: str | None) -> str:
    """An output's folder (the asset id, cut to 12 characters) and file name: enough to tell them apart."""
    if not uri:
        return "–"
    parts = uri.rstrip("/").split("/")
    if len(parts) < 2:
        return uri
    folder = parts[-2] if len(parts[-2]) <= 14 else parts[-2][:12] + "…"
    return f"{folder}/{parts[-1]}"


def _share(row: dict[str, Any]) -> dict[str, Any]:
    """A group's share with its interval drawn against the reference and its tolerance."""
    d = row["d"]
    interval = (row["value"], row["ci_low"], row["ci_high"])
    bar = _bar(*interval, reference=d["reference"], tolerance=row["threshold"])
    return {**row, "group": d["group"], "bar": bar}


def _sections(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        row = {**row, "d": json.loads(row.get("detail") or "{}")}
        by[row["metric"]].append(row)
    representation: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in by["representation_share"]:
        representation[row["d"]["attribute"]].append(_share(row))
    exposure: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in by["exposure_share"]:
        d = row["d"]
        exposure[f"{d['source']}: {d['attribute'].replace('_', ' ')}"].append(_share(row))
    quality = []
    for metric in ("detection_rate", "gender_agreement"):
        for row in by[metric]:
            quality.append({**row, "bar": _bar(row["value"], row["ci_low"], row["ci_high"])})
        for row in by[f"{metric}_gap"]:
            quality.append(
                {
                    **row,
                    "group": "gap (max - min)",
                    "bar": _bar(
                        row["value"], row["ci_low"], row["ci_high"], reference=0.0, tolerance=row["threshold"]
                    ),
                }
            )
    return {
        "identity": [
            {**r, "bar": _bar(r["value"], None, None, reference=r["threshold"], scale=1.2)}
            for r in by["max_identity_distance"]
        ],
        "manipulation": [
            {**r, "bar": _bar(r["value"], None, None, reference=r["threshold"])} for r in by["max_face_score"]
        ],
        "provenance": by["verified"],
        "representation": dict(representation),
        "not_assessed": [r for r in by["representation"]],
        "exposure": dict(exposure),
        "concentration": by["exposure_gini"] + by["exposure_coverage"],
        "quality": quality,
    }


def findings(rows: list[dict[str, Any]]) -> list[str]:
    """The plain-language sentences at the top of the report: what was flagged, or that nothing was."""
    said = []
    for row in rows:
        if not row.get("flagged"):
            continue
        d = json.loads(row.get("detail") or "{}")
        what = _short(row.get("subject"))
        if row["audit"] == "identity_drift":
            said.append(
                f"Identity drift: in {what} a face moved {row['value']:.2f} in identity space between "
                f"source and output (threshold {row['threshold']:.2f}) - the person may have been "
                "replaced or altered. Compare the crops below."
            )
        elif row["audit"] == "manipulation":
            said.append(
                f"Manipulation signals: {d.get('introduced_by_output')} face(s) in {what} score above "
                f"the detector's threshold ({row['threshold']:.2f}) where the source did not."
            )
        elif row["audit"] == "provenance":
            said.append(f"Provenance: {what} does not match its record: {'; '.join(d.get('problems', []))}.")
        elif row["metric"] in ("representation_share", "exposure_share"):
            where = (
                "the catalog's detected faces"
                if row["metric"] == "representation_share"
                else (f"the top {d.get('top_k')} {d.get('source')} results")
            )
            attribute = d["attribute"].replace("_", " ")
            said.append(
                f"{attribute.capitalize()}: '{d['group']}' makes up {_pct(row['value'])} of {where} "
                f"(95% interval {_pct(row['ci_low'])}-{_pct(row['ci_high'])}) against a reference of "
                f"{_pct(d['reference'])}; the whole interval lies more than {_pct(row['threshold'])} away."
            )
        elif row["metric"] == "exposure_gini":
            said.append(
                f"Exposure is concentrated: a Gini of {row['value']:.2f} across {d['assets']} assets "
                f"(interval {row['ci_low']:.2f}-{row['ci_high']:.2f}, limit {row['threshold']:.2f})."
            )
        elif row["metric"].endswith("_gap"):
            said.append(
                f"Quality parity: the {row['metric'][:-4].replace('_', ' ')} differs between annotated "
                f"groups by {_pct(row['value'])} (interval {_pct(row['ci_low'])}-{_pct(row['ci_high'])})."
            )
    return said


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Audit of run {{ run_id }}</title>
<style>
 body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1d2430; padding:
0 1rem; }
 h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 2px solid #dde3ea;
}
 .meta { color: #5b6675; } .notice { background: #f3f6fa; border-left: 4px solid #6b8aad; padding: .6rem
1rem; }
 .flag { color: #a3261c; font-weight: 600; } .ok { color: #2b7a3d; }
 ul.findings li { margin: .35rem 0; } table { border-collapse: collapse; width: 100%; margin: .6rem 0; }
 th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e6eaef; vertical-align: middle;
}
 th { font-weight: 600; color: #3c4757; } td.num { font-variant-numeric: tabular-nums; white-space: nowrap;
}
 .track { position: relative; height: 16px; background: #f1f3f6; border-radius: 3px; min-width: 16rem; }
 .track .band { position: absolute; top: 0; bottom: 0; background: #d9ead9; }
 .track .ci { position: absolute; top: 5px; height: 6px; background: #5c7fa8; border-radius: 3px; }
 .track .dot { position: absolute; top: 3px; width: 10px; height: 10px; margin-left: -5px; border-radius:
50%;
   background: #1d2430; }
 .track .ref { position: absolute; top: -2px; bottom: -2px; width: 2px; margin-left: -1px; background:
#c2410c; }
 .flagged .track .dot { background: #a3261c; } .legend span { margin-right: 1.2rem; }
 .swatch { display: inline-block; width: 14px; height: 8px; vertical-align: middle; margin-right: .3rem; }
 img.evidence { height: 80px; border: 1px solid #ccd; } .small { font-size: .85rem; color: #5b6675; }
 .cards { display: flex; gap: 1rem; flex-wrap: wrap; } .card { border: 1px solid #dde3ea; border-radius:
6px;
   padding: .6rem 1rem; min-width: 10rem; } .card b { font-size: 1.4rem; display: block; }
</style></head><body>
{% macro track(bar) -%}
<div class="track">
 {%- if bar.band %}<div class="band"
style="left:{{ '%.1f' % bar.band[0] }}%;width:{{ '%.1f' % bar.band[1] }}%"></div>{% endif %}
 {%- if bar.ci %}<div class="ci"
style="left:{{ '%.1f' % bar.ci[0] }}%;width:{{ '%.1f' % [bar.ci[1], 0.6]|max }}%"></div>{% endif %}
 {%- if bar.ref is not none %}<div class="ref" style="left:{{ '%.1f' % bar.ref }}%"></div>{% endif %}
 {%- if bar.dot is not none %}<div class="dot" style="left:{{ '%.1f' % bar.dot }}%"></div>{% endif %}
</div>
{%- endmacro %}
{% macro status(flagged) %}{% if flagged %}<span class="flag">flagged</span>{% else %}<span
class="ok">ok</span>{% endif %}{% endmacro %}
<h1>Audit of run {{ run_id }}</h1>
<div class="meta">{{ audit_id }}{% if job %} · job {{ job }} ({{ run_status }}){% endif %} ·
 {{ summary.seconds.total }} s</div>

<div class="cards" style="margin-top:1rem">
{% for name, c in summary.audits.items() %}
 <div class="card">{{ name.replace('_', ' ') }}<b
class="{{ 'flag' if c.flagged else 'ok' }}">{{ c.flagged }} flagged</b>
 <span class="small">of {{ c.checked }} checks</span></div>
{% endfor %}
</div>

<h2>Findings</h2>
{% if findings %}<ul class="findings">{% for f in findings %}<li>{{ f }}</li>{% endfor %}</ul>
{% else %}<p class="ok">Nothing was flagged: no identity drift, manipulation signal, provenance mismatch or
disparity cleared its threshold.</p>{% endif %}
<p class="notice">{{ notice }}</p>

<h2>Identity drift</h2>
<p>For each output, the same frames of source and output were searched for faces; faces at the same place
were compared by their 128-d identity vectors (dlib). The threshold ({{ config.identity.threshold }}) was
calibrated on honest restorations against face swaps. <span class="legend"><span><span class="swatch"
style="background:#c2410c"></span>threshold</span><span><span class="swatch"
style="background:#1d2430"></span>
largest distance</span></span></p>
{% if s.identity %}<table><tr><th>output</th><th>faces compared</th><th>largest distance</th><th
style="width:30%">0 … 1.2</th>
<th>evidence (source | output)</th><th></th></tr>
{% for r in s.identity %}<tr class="{{ 'flagged' if r.flagged }}"><td>{{ short(r.subject) }}</td>
<td class="num">{{ r.d.faces_compared }}{% if r.d.faces_lost or r.d.faces_gained %} <span class="small">
({{ r.d.faces_lost }} lost, {{ r.d.faces_gained }} new)</span>{% endif %}</td><td
class="num">{{ num(r.value) }}</td>
<td>{{ track(r.bar) }}</td><td>{% if r.evidence_uri and r.evidence_uri in evidence %}<img class="evidence"
alt="source and output face" src="data:image/jpeg;base64,{{ evidence[r.evidence_uri] }}">{% endif %}</td>
<td>{{ status(r.flagged) }}</td></tr>{% endfor %}</table>
{% else %}<p class="small">This run wrote no remastered outputs with faces to compare.</p>{% endif %}

<h2>Manipulation signals</h2>
<p>Each compared face was scored by the project's own detector (spectral, blending-boundary and colour cues;
a small network trained on faces it manipulated itself). An output is flagged when a face scores above the
threshold there but not in the source.
{% if detector %}On people it never saw in training, its ROC AUC was
<b>{{ detector.held_out.roc_auc.all }}</b>
(swaps {{ detector.held_out.roc_auc.swap }}, blends {{ detector.held_out.roc_auc.blend }}, generative
upscaling
{{ detector.held_out.roc_auc.generative }}); at its threshold it flagged
{{ pct(detector.held_out.at_threshold.false_positive_rate) }}
of real faces. These are synthetic manipulations: the figure says nothing about how a modern deepfake would
fare.{% endif %}</p>
{% if s.manipulation %}<table><tr><th>output</th><th>faces scored</th><th>highest score</th>
<th>source's highest</th><th style="width:30%">0 … 1</th><th></th></tr>
{% for r in s.manipulation %}<tr class="{{ 'flagged' if r.flagged }}"><td>{{ short(r.subject) }}</td>
<td class="num">{{ r.d.faces_scored }}</td><td class="num">{{ num(r.value) }}</td>
<td
class="num">{{ num(r.d.source_scores|max if r.d.source_scores else none) }}</td><td>{{ track(r.bar) }}</td>
<td>{{ status(r.flagged) }}</td></tr>{% endfor %}</table>{% endif %}

<h2>Provenance</h2>
<p>Each output's bytes and its source's were hashed again and held against the manifest beside the file and
the
catalog's row (source hash, operations, model, output hash).
{% if c2pa_configured %}Content credentials (C2PA) were checked{% else %}No signing key is configured
(ARCHIVIST_C2PA_CERT_CHAIN / ARCHIVIST_C2PA_PRIVATE_KEY), so no content credentials were
written{% endif %}.</p>
{% if s.provenance %}<table><tr><th>output</th><th>kind</th><th>C2PA</th><th>problems</th><th></th></tr>
{% for r in s.provenance %}<tr><td>{{ short(r.subject) }}</td><td>{{ r.d.kind }}</td>
<td>{% if r.d.c2pa %}{{ r.d.c2pa.state }}{% if r.d.c2pa.sealed_by_audit %} (sealed by this
audit){% endif %}{% else %}–{% endif %}</td>
<td>{{ r.d.problems|join('; ') or '–' }}</td><td>{{ status(r.flagged) }}</td></tr>{% endfor %}</table>
{% else %}<p class="small">This run wrote no remastered outputs.</p>{% endif %}

<h2>Representation in the catalog</h2>
<p>Shares of each perceived group among all detected faces in the catalog ({{ catalog_faces }} faces), with
{{ (100 * config.bias.confidence)|round|int }}% bootstrap intervals (resampling {{ config.bias.unit }}s).
<span class="legend"><span><span class="swatch" style="background:#5c7fa8"></span>interval</span>
<span><span class="swatch" style="background:#c2410c"></span>reference</span>
<span><span class="swatch" style="background:#d9ead9"></span>reference ±
{{ pct(config.bias.disparity_threshold) }}</span></span>
A group is flagged only when its whole interval lies outside the band.</p>
{% for attribute, groups in s.representation.items() %}<h3>{{ attribute.replace('_', ' ') }}</h3>
<table><tr><th>group</th><th>faces</th><th>share</th><th>interval</th><th>reference</th><th
style="width:35%">0 … 100%</th><th></th></tr>
{% for r in groups %}<tr class="{{ 'flagged' if r.flagged }}"><td>{{ r.group }}</td><td
class="num">{{ r.d.count }}</td>
<td class="num">{{ pct(r.value) }}</td><td class="num">{{ pct(r.ci_low) }}–{{ pct(r.ci_high) }}</td>
<td
class="num">{{ pct(r.d.reference) if r.d.reference is not none else 'none named' }}</td>
<td>{{ track(r.bar) }}</td>
<td>{{ status(r.flagged) if r.d.reference is not none else '' }}</td></tr>{% endfor %}</table>{% endfor %}
{% for r in s.not_assessed %}<p class="small">{{ r.subject.replace('_', ' ') }}: not assessed
({{ r.d.note }}).</p>{% endfor %}

<h2>Exposure in search and recommendations</h2>
<p>{{ exposure_note or '' }}. Group shares among faces in the results, weighted by rank, against the
catalog's
own shares (what ranking at random would show); and how evenly exposure spreads over assets.</p>
{% for heading, groups in s.exposure.items() %}<h3>{{ heading }}</h3>
<table><tr><th>group</th><th>exposure share</th><th>interval</th><th>catalog</th><th style="width:35%">0 …
100%</th><th></th></tr>
{% for r in groups %}<tr class="{{ 'flagged' if r.flagged }}"><td>{{ r.group }}</td><td
class="num">{{ pct(r.value) }}</td>
<td class="num">{{ pct(r.ci_low) }}–{{ pct(r.ci_high) }}</td><td class="num">{{ pct(r.d.reference) }}</td>
<td>{{ track(r.bar) }}</td><td>{{ status(r.flagged) }}</td></tr>{% endfor %}</table>{% endfor %}
{% if s.concentration %}<table><tr><th>measure</th><th>value</th><th>interval</th><th>limit</th><th></th></tr>
{% for r in s.concentration %}<tr><td>{{ r.d.source }}: {{ r.metric.replace('_', ' ') }} <span
class="small">({{ r.d.assets }} assets, {{ r.d.queries }} lists)</span></td>
<td class="num">{{ num(r.value) }}</td><td class="num">{{ num(r.ci_low) }}–{{ num(r.ci_high) }}</td>
<td
class="num">{{ num(r.threshold) }}</td>
<td>{{ status(r.flagged) if r.threshold is not none else '' }}</td></tr>
{% endfor %}</table>{% endif %}

<h2>Quality parity of the face model</h2>
{% if s.quality %}<p>On a small labelled set (the {{ s.quality[0].d.labelled_set }}): how often the face is
detected,
and how often the model's perceived gender agrees with the annotation, per annotated group. Few faces are
labelled female (LFW is mostly men), so those intervals are wide.</p>
<table><tr><th>measure</th><th>group</th><th>rate</th><th>interval</th><th style="width:35%">0 …
100%</th><th></th></tr>
{% for r in s.quality %}<tr
class="{{ 'flagged' if r.flagged }}"><td>{{ r.metric.replace('_gap', '').replace('_', ' ') }}</td>
<td>{{ r.d.group or r.group }}{% if r.d.faces %} <span class="small">({{ r.d.faces }}
faces)</span>{% endif %}</td>
<td class="num">{{ pct(r.value) }}</td><td class="num">{{ pct(r.ci_low) }}–{{ pct(r.ci_high) }}</td>
<td>{{ track(r.bar) }}</td><td>{{ status(r.flagged) if r.threshold is not none else '' }}</td></tr>
{% endfor %}</table>
{% else %}<p class="small">Not measured.</p>{% endif %}

<h2>How long it took</h2>
<table>{% for k, v in summary.seconds.items() %}<tr><td>{{ k }}</td><td class="num">{{ v }}
s</td></tr>{% endfor %}</table>
</body></html>
"""


def render(context: dict[str, Any]) -> str:
    """The report page for an audit's context (see ``jobs.audit.run``)."""
    environment = jinja2.Environment(autoescape=True)
    environment.globals.update(pct=_pct, num=_num, short=_short)
    page = environment.from_string(TEMPLATE)
    values = {
        "detector": None,
        "c2pa_configured": False,
        "exposure_note": None,
        "catalog_faces": 0,
        "job": None,
        "run_status": None,
        **context,
    }
    return page.render(
        **values, s=_sections(context["rows"]), findings=findings(context["rows"]), notice=NOTICE
    )
