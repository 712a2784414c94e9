"""``cimkit report RESULTS... -o report.html``: one self-contained HTML page from cimkit's JSON results.

Every result's ``to_json`` (``Report``, ``ManyReport``, ``CamReport``, ``TreesResult``, ``StudyResult``,
``JointResult``, ``SimulationResult``, ``AttackResult``, ``CurveResult``, ``AxcResult``, ...) names its kind in
``"result"``; the robustness study's parts (``OUT/parts/*.json``: ``{"settings", "settings_digest", "result":
{...}}``) and its ``results.json`` (``{"study", "parts": {name: result}}``) are unwrapped; a few benchmark files
without a ``"result"`` key are recognised by their shape (``recognise``: ``snn_tasks.json``,
``robust_budgets.json``, a training step's cost, a spiking run's activity, a training history).

The page: a header with the chip summary (the specs the results name, with their technology and key numbers
where a result carries its hardware), a table of contents, then one section per result drawn by the renderer
registered for its kind (``cimkit.report.sections``; a kind without one gets its scalar fields and a note).
Self-contained: inline CSS and JavaScript, figures as inline PNG (data URIs) or hand-built SVG, and a
Content-Security-Policy that forbids loading anything from anywhere; no network access is needed to view it.
Tables sort by a click on a header (numbers by value); hovering a point of a Pareto plot shows its parameters.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import InputError, short_repr
from ..io import atomic_write, check_output_path
from . import sections as S

#: the suffixes a report may be written as
SUFFIXES = (".html", ".htm")
#: a results file larger than this is refused (a result is kilobytes to a few megabytes)
MAX_JSON_BYTES = 512 << 20

_CSS = """
:root{--fg:#1d2330;--mute:#5b6475;--line:#d8dce4;--bg:#fff;--soft:#f4f6f9;--acc:#2f5fb3}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;max-width:1200px;padding:0 24px 48px}
header{border-bottom:2px solid var(--acc);margin-bottom:16px;padding:16px 0 8px}h1{margin:0 0 4px;font-size:24px}
h2{font-size:19px;margin:36px 0 6px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px;color:var(--acc)}.src{color:var(--mute);font-size:12px;margin:0 0 8px}
nav ol{columns:2;font-size:13px;padding-left:20px}nav a{color:var(--acc);text-decoration:none}
.cards{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}.card{background:var(--soft);border:1px solid var(--line);
border-radius:6px;padding:6px 12px;min-width:120px}.card .v{font-size:16px;font-weight:600;white-space:nowrap}
.card .k{font-size:11px;color:var(--mute)}
table{border-collapse:collapse;margin:8px 0 12px;font-size:12.5px;display:block;overflow-x:auto;max-width:100%}
caption{text-align:left;color:var(--mute);font-size:12px;padding:2px 0}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;white-space:nowrap}td.num{text-align:right}
thead th{background:var(--soft);cursor:pointer;user-select:none;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:9px}th[aria-sort=descending]::after{content:" \\25BC";font-size:9px}
tbody tr:nth-child(even){background:#fafbfc}
.fig{margin:8px 0}.fig img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{font-size:12px;color:var(--mute)}
.note{color:var(--mute);margin:6px 0}.warn{background:#fff6e0;border-left:4px solid #e0a000;padding:6px 10px;margin:8px 0}
.render-error{background:#fdecec;border-left:4px solid #c62828;padding:6px 10px;margin:8px 0}
svg.scatter{background:#fff;border:1px solid var(--line);max-width:100%;height:auto}
svg .frame{fill:none;stroke:#999}svg .grid{stroke:#e6e8ee}svg .tick{font-size:10px;fill:#444}
svg .lab{font-size:11px;fill:#222}svg .t{font-size:12px;font-weight:600;fill:#222;text-anchor:middle}
svg .pt{fill:#5b86c9;fill-opacity:.55;stroke:#2f5fb3;stroke-width:.6;cursor:pointer}
svg .pt.pareto{fill:#d62728;fill-opacity:.9;stroke:#7a1010}svg .pt:hover{stroke:#000;stroke-width:2}
svg .front{fill:none;stroke:#d62728;stroke-width:1.2;stroke-dasharray:4 3}
#tip{position:absolute;z-index:10;background:#1d2330;color:#fff;font-size:12px;padding:5px 8px;border-radius:4px;
max-width:460px;pointer-events:none;box-shadow:0 2px 6px rgba(0,0,0,.3)}
footer{margin-top:40px;color:var(--mute);font-size:12px;border-top:1px solid var(--line);padding-top:8px}
"""

_JS = """
(function(){
  function key(td){
    var v=td.getAttribute('data-v'); if(v===null){v=td.textContent;}
    var n=Number(v);
    return (v.trim()!=='' && isFinite(n)) ? {n:n} : {s:v.toLowerCase(), e:v===''};
  }
  function cmp(a,b){
    if(a.n!==undefined&&b.n!==undefined){return a.n-b.n;}
    if(a.n!==undefined){return -1;} if(b.n!==undefined){return 1;}
    if(a.e!==b.e){return a.e?1:-1;}
    return a.s<b.s?-1:(a.s>b.s?1:0);
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    if(!table.tHead||!table.tBodies.length){return;}
    var ths=table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths,function(th,col){
      th.addEventListener('click',function(){
        var asc=th.getAttribute('aria-sort')!=='ascending';
        Array.prototype.forEach.call(ths,function(o){o.removeAttribute('aria-sort');});
        th.setAttribute('aria-sort',asc?'ascending':'descending');
        var body=table.tBodies[0];
        Array.prototype.slice.call(body.rows).map(function(r,i){return {r:r,k:key(r.cells[col]),i:i};})
          .sort(function(a,b){var c=cmp(a.k,b.k);if(!asc&&!(a.k.e||b.k.e)){c=-c;}return c||a.i-b.i;})
          .forEach(function(x){body.appendChild(x.r);});
      });
    });
  });
  var tip=document.getElementById('tip');
  document.addEventListener('mouseover',function(e){
    var t=e.target&&e.target.closest?e.target.closest('[data-tip]'):null;
    if(!t){tip.hidden=true;return;}
    tip.textContent=t.getAttribute('data-tip');tip.hidden=false;
    tip.style.left=(e.pageX+14)+'px';tip.style.top=(e.pageY+14)+'px';
  });
  document.addEventListener('mousemove',function(e){
    if(!tip.hidden){tip.style.left=(e.pageX+14)+'px';tip.style.top=(e.pageY+14)+'px';}
  });
})();
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


# ---- reading -------------------------------------------------------------------------------------------------------
def recognise(data: Any) -> str | None:
    """The kind of a benchmark file without a ``"result"`` key, from its shape; None when it is none of them:
    ``SnnTasks`` (``benchmarks/results/snn_tasks.json``: ``sections`` of ``entries``), ``AttackBudgets``
    (``robust_budgets.json``: ``attacks`` with ideal and chip accuracies), ``StepCost`` (a training step's
    cost: ``rule`` and the phases' energies), ``SpikeActivity`` (a spiking run: ``steps`` and ``layers`` with
    ``density``), ``TrainingHistory`` (``history``: records with ``epoch``)."""
    if not isinstance(data, dict):
        return None
    secs = data.get("sections")
    if isinstance(secs, dict) and secs and all(isinstance(v, dict) and "entries" in v for v in secs.values()):
        return "SnnTasks"
    attacks = data.get("attacks")
    if (
        isinstance(attacks, dict)
        and attacks
        and all(isinstance(v, dict) and "chip_accuracy" in v for v in attacks.values())
    ):
        return "AttackBudgets"
    if {"rule", "forward_energy_j", "error_energy_j", "update_energy_j"} <= set(data):
        return "StepCost"
    layers = data.get("layers")
    if "steps" in data and isinstance(layers, (dict, list)) and layers:
        values = layers.values() if isinstance(layers, dict) else layers
        if all(isinstance(v, dict) and "density" in v for v in values):
            return "SpikeActivity"
    hist = data.get("history")
    if isinstance(hist, list) and hist and all(isinstance(r, dict) and "epoch" in r for r in hist):
        return "TrainingHistory"
    return None


def _results_in(path: Path, data: Any) -> list[dict[str, Any]]:
    """The results one JSON document holds (see the module documentation), or an InputError naming ``path``."""
    if isinstance(data, dict):
        kind = data.get("result")
        if isinstance(kind, str) and kind:
            return [data]
        if isinstance(kind, dict) and isinstance(kind.get("result"), str):  # a robustness part
            inner = dict(kind)
            if isinstance(data.get("settings"), dict):
                inner.setdefault("settings", data["settings"])
            return [inner]
        parts = data.get("parts")
        if isinstance(parts, dict) and "study" in data:  # a robustness study's results.json
            found = [
                {**v, "_part": str(k)}
                for k, v in parts.items()
                if isinstance(v, dict) and isinstance(v.get("result"), str)
            ]
            if not found:
                raise InputError(
                    f"{path}: a robustness results.json without any part (parts = {short_repr(parts)}); "
                    "run the study first, or give its parts/*.json"
                )
            return found
        named = recognise(data)
        if named:
            return [{**data, "result": named}]
        what = f"a JSON object with keys {', '.join(map(repr, list(data)[:8]))}{' ...' if len(data) > 8 else ''}"
    elif isinstance(data, list) and data and all(isinstance(r, dict) and "epoch" in r for r in data):
        return [{"result": "TrainingHistory", "history": data}]
    else:
        what = f"a JSON {type(data).__name__} {short_repr(data, 60)}"
    raise InputError(
        f"{path}: {what} is not a cimkit result; expected the JSON a result's to_json() or a --json option writes "
        "(an object whose 'result' key names the result type, e.g. \"Report\"), a robustness part or results.json, "
        "or a known benchmark file (snn_tasks.json, robust_budgets.json)"
    )


def _value(text: str) -> Any:
    """A CSV cell as a number where it is one (int, then float), else the text; empty as None."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


#: at most this many trials of a study's trials.csv are drawn
MAX_TRIALS = 20000


def _study_trials(path: Path, d: dict[str, Any]) -> dict[str, Any]:
    """A ``StudyResult``'s data with every completed trial (``trials``: number, feasible, values, params, energy,
    latency and area) read from the study's ``trials.csv`` (in its ``out_dir``, else beside the JSON) when the
    JSON lists only the best designs, so that the Pareto plot shows the front among all the trials. Unchanged
    when there is no such file or it cannot be read (the page then says that only the best designs are shown)."""
    if d.get("trials") is not None:
        return d
    folders = [Path(d["out_dir"])] if isinstance(d.get("out_dir"), str) and d["out_dir"] else []
    for csv_path in (f / "trials.csv" for f in [*folders, path.parent]):
        if not csv_path.is_file():
            continue
        try:
            with csv_path.open(newline="", encoding="utf-8") as fh:
                rows = [r for _, r in zip(range(MAX_TRIALS), csv.DictReader(fh))]
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        try:
            trials = _trials_of(rows)
        except (TypeError, ValueError, AttributeError, KeyError):  # a truncated or hand-edited file: not used
            continue
        return {**d, "trials": trials, "_trials_from": str(csv_path)}
    return d


def _trials_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The completed trials of ``trials.csv`` rows; raises on a row that does not have the file's columns."""
    trials = []
    for r in rows:
        if None in r or None in r.values():  # a row longer or shorter than the header
            raise ValueError("a row does not match the header")
        if r.get("state") != "COMPLETE":
            continue
        values = [
            _value(r[k])
            for k in sorted(
                (k for k in r if k.startswith("values_")), key=lambda k: int(k[7:]) if k[7:].isdigit() else 0
            )
        ]
        trial: dict[str, Any] = {
            "number": _value(r.get("number") or ""),
            "feasible": r.get("feasible") == "True",
            "values": values or ([_value(r["value"])] if "value" in r else []),
            "params": {k[len("params_") :]: _value(v) for k, v in r.items() if k.startswith("params_")},
        }
        trial.update({k: _value(r[k]) for k in ("energy_j", "latency_s", "area_mm2") if k in r})
        trials.append(trial)
    return trials


def _read(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"no such results file: {path}" + (" (not a regular file)" if path.exists() else ""))
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise InputError(f"{path}: {size:,} bytes is too large for a results file (at most {MAX_JSON_BYTES:,})")
    if size == 0:
        raise InputError(f"{path}: the file is empty; expected the JSON of a cimkit result")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); expected the JSON of a cimkit result") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text, parse_constant=lambda _: None)  # NaN / Infinity of older files: undefined
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); expected the JSON of a "
            "cimkit result (to_json() or a --json option)"
        ) from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to read") from None


def load_results(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, dict[str, Any]]]:
    """The results in ``paths`` as (file, data) pairs, in the order given: a folder means its ``*.json`` files
    (sorted by name, not recursive) other than checkpoints (``*-checkpoint.json``); a robustness ``results.json`` gives one pair per part (its name in
    ``"_part"``); a part's ``settings`` stay with its result (the chip summary reads their hardware); a study
    that lists only its best designs gets every trial from its ``trials.csv`` when that is there (``"trials"``).

    Raises an ``InputError`` naming the file for a missing file, a folder without ``*.json``, a file that is
    not UTF-8 JSON, or JSON that is not a cimkit result (with what was expected), and when no path is given."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[tuple[Path, dict[str, Any]]] = []
    given = 0
    for p in paths:
        given += 1
        path = Path(p)
        if path.is_dir():
            # a run's checkpoint (``cimkit simulate --out``) sits beside its results and is not one
            files = sorted(f for f in path.glob("*.json") if f.is_file() and not f.name.endswith("-checkpoint.json"))
            if not files:
                raise InputError(f"{path}: the folder holds no *.json results file")
        else:
            files = [path]
        for f in files:
            out.extend(
                (f, _study_trials(f, d) if d.get("result") == "StudyResult" else d) for d in _results_in(f, _read(f))
            )
    if not given:
        raise InputError("no results given; pass one or more JSON files (or folders of them)")
    return out


# ---- the page ------------------------------------------------------------------------------------------------------
def _label(path: Path, d: Mapping[str, Any]) -> str:
    """A short name of one result for its heading: what it is about, else the file (and part)."""
    kind = d.get("result")
    if kind == "Report":
        return f"{d.get('workload', '?')} on {d.get('spec', '?')}"
    if kind == "CamReport":
        return f"scheme {d.get('scheme', '?')}"
    if kind == "TreesResult":
        return f"{d.get('model', '?')} on {d.get('data', '?')}"
    if kind == "StudyResult":
        return f"study {d.get('name', '?')}"
    if kind in ("SimulationResult", "CurveResult") and d.get("spec"):
        return f"{d.get('model') or d.get('study', '')} on {d.get('spec')}".strip()
    if kind == "AxcResult":
        return f"{d.get('model', '?')} on {d.get('spec', '?')}"
    return str(d.get("_part") or path.stem)


def _hardware(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    settings = d.get("settings")
    if not isinstance(settings, dict):
        return []
    return [
        h for h in (settings.get("hardware"), settings.get("drift_hardware")) if isinstance(h, dict) and h.get("name")
    ]


def _chip_summary(results: Sequence[tuple[Path, Mapping[str, Any]]]) -> str:
    """The chips the results name: each full spec a result carries (technology, node, array, bits, ADC, clock),
    and each chip figure of a cost report (area, energy, TOPS/W)."""
    specs: dict[str, dict[str, Any]] = {}
    names: dict[str, None] = {}
    costs = []
    for _path, d in results:
        for h in _hardware(d):
            specs.setdefault(str(h["name"]), h)
        for key in ("spec", "spec_name"):
            if isinstance(d.get(key), str) and d[key]:
                names[d[key]] = None
        for s in d.get("specs") or [] if d.get("result") == "ManyReport" else []:
            names[str(s)] = None
        if d.get("result") == "Report":
            costs.append(d)
    out = []
    if specs:

        def get(h: Mapping[str, Any], dotted: str) -> Any:
            value: Any = h
            for part in dotted.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return value

        rows = []
        for name, h in specs.items():
            rows.append(
                [
                    name,
                    get(h, "device.technology"),
                    get(h, "technology.node_nm"),
                    f"{get(h, 'array.rows')}x{get(h, 'array.cols')}" if get(h, "array.rows") else None,
                    get(h, "device.bits_per_cell"),
                    get(h, "weight_bits"),
                    get(h, "periphery.input_bits"),
                    get(h, "periphery.dac_mode"),
                    get(h, "periphery.adc_bits"),
                    get(h, "technology.clock_hz"),
                    h.get("description"),
                ]
            )
        out.append(
            S.table(
                [
                    "spec",
                    "technology",
                    "node (nm)",
                    "array",
                    "bits/cell",
                    "weight bits",
                    "input bits",
                    "DAC",
                    "ADC bits",
                    "clock",
                    "description",
                ],
                rows,
                formats=[
                    None,
                    None,
                    S.plain,
                    None,
                    S.plain,
                    S.plain,
                    S.plain,
                    None,
                    S.plain,
                    lambda v: S.si(v, "Hz"),
                    None,
                ],
                caption="chips (from the settings the results carry)",
            )
        )
    if costs:
        rows = [
            [
                c.get("spec"),
                c.get("workload"),
                c.get("feasible"),
                c.get("area_mm2"),
                c.get("energy_j"),
                c.get("latency_s"),
                c.get("tops_per_w"),
                c.get("arrays"),
                c.get("tiles"),
                c.get("clock_period_s"),
            ]
            for c in costs
        ]
        out.append(
            S.table(
                [
                    "spec",
                    "workload",
                    "feasible",
                    "area",
                    "energy",
                    "latency",
                    "TOPS/W",
                    "arrays",
                    "tiles",
                    "clock period",
                ],
                rows,
                formats=[
                    None,
                    None,
                    S.plain,
                    S.mm2,
                    lambda v: S.si(v, "J"),
                    lambda v: S.si(v, "s"),
                    S.plain,
                    S.plain,
                    S.plain,
                    lambda v: S.si(v, "s"),
                ],
                caption="chip figures of the cost reports",
            )
        )
    others = [n for n in names if n not in specs]
    if others:
        out.append(S.note(f"specs named by the results: {', '.join(others)}"))
    if not out:
        out.append(S.note("the results name no chip"))
    return "".join(out)


def _render_one(d: dict[str, Any]) -> str:
    """One result's section body: its kind's renderer, or the generic one (with the reason when the renderer
    could not read the data)."""
    kind = str(d.get("result"))
    renderer = S.SECTIONS.get(kind)
    if renderer is None:
        return S.generic(d)
    try:
        return renderer(d)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError) as exc:
        return S.note(
            f"this {kind} could not be drawn ({type(exc).__name__}: {exc}); its fields:", "render-error"
        ) + S.generic(d)


def render_html(
    results: Sequence[tuple[str | os.PathLike[str], Mapping[str, Any]]], title: str = "cimkit report"
) -> str:
    """The report page of ``results`` ((file, data) pairs, as ``load_results`` gives) as one self-contained HTML
    document: the chip summary, a table of contents and one section per result."""
    from .. import __version__

    pairs = [(Path(p), dict(d)) for p, d in results]
    toc, body = [], []
    for i, (path, d) in enumerate(pairs, 1):
        kind = str(d.get("result", "?"))
        head = f"{S.TITLES.get(kind, kind)}: {_label(path, d)}"
        anchor = f"r{i}"
        toc.append(f'<li><a href="#{anchor}">{S.esc(head)}</a></li>')
        src = f"{path}" + (f" (part {d['_part']})" if d.get("_part") else "")
        body.append(
            f'<section class="result" id="{anchor}" data-kind="{S.esc(kind)}"><h2>{i}. {S.esc(head)}</h2>'
            f'<p class="src">{S.esc(kind)} from {S.esc(src)}</p>{_render_one(d)}</section>'
        )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{S.esc(title)}</title>'
        f"<style>{_CSS}</style></head><body>"
        f'<header><h1>{S.esc(title)}</h1><p class="src">{len(pairs)} result(s)</p><h3>Chip summary</h3>'
        f"{_chip_summary(pairs)}</header>"
        f"<nav><h3>Contents</h3><ol>{''.join(toc)}</ol></nav>"
        f"<main>{''.join(body)}</main>"
        f"<footer>written by cimkit {S.esc(__version__)}; self-contained: nothing is loaded from the network</footer>"
        f'<div id="tip" hidden></div><script>{_JS}</script></body></html>\n'
    )


def write_report(
    paths: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Read the results in ``paths`` (files or folders of ``*.json``, see ``load_results``), render them
    (``render_html``) and write the page to ``out`` (``.html`` / ``.htm``) atomically; returns ``out``.
    ``title``: the page's title (None: "cimkit report" with the number of results). The output path is
    checked before anything is read; bad input raises an ``InputError`` naming the file."""
    target = check_output_path(Path(out), SUFFIXES, "report")
    results = load_results(paths)
    text = render_html(results, title=title or f"cimkit report: {len(results)} result(s)")
    return atomic_write(target, text)
