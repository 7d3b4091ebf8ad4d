"""Renders a `ComparisonResult` to `report.md` and a self-contained `report.html`."""

import base64
import html
import json
import mimetypes
import os

from lung_keras.report.results import ComparisonResult
from lung_keras.report.results import is_number
from lung_keras.report.verdict import HELPED
from lung_keras.report.verdict import HURT
from lung_keras.report.verdict import NO_DIFFERENCE
from lung_keras.report.verdict import explain_verdict
from lung_keras.report.verdict import verdict

# ---------------------------------------------------------------- formatting


def fmt(v, spec=".4f"):
    """Formats a number of the results; `n/a` for an undefined one (None / NaN)."""
    return format(v, spec) if is_number(v) else "n/a"


def fmt_ci(ci, spec=".4f"):
    if not ci or len(ci) != 2 or not all(is_number(v) for v in ci):
        return "n/a"
    return f"{format(ci[0], spec)} to {format(ci[1], spec)}"


def fmt_p(p):
    return format(p, ".3g") if is_number(p) else "n/a"


# ------------------------------------------------------------ document model
# Blocks: ("h", level, text) ("p", text) ("ul", [text]) ("table", header, rows)
#         ("img", caption, path) ("pre", text) ("details", summary, [blocks])


def _arm_table(cond):
    header = ["Arm", "Mean Dice", "95% CI (over seeds)", "95% CI (over images)", "Seeds", "Images",
              "Per-seed mean Dice"]
    rows = [[arm, fmt(e.mean), fmt_ci(e.ci95), fmt_ci(e.ci95_images), str(e.n_seeds), str(e.n_images),
             ", ".join(fmt(v) for v in e.per_seed_mean)] for arm, e in cond.arms.items()]
    return ("table", header, rows)


def _seed_text(p):
    seed = p.seed_diff
    return f"{fmt(seed.mean, '+.4f')} ({fmt_ci(seed.ci95, '+.4f')})" if seed else "n/a"


def _paired_rows(cond, alpha, require_seed_ci):
    rows = []
    holm = any(p.holm for _, p in cond.all_comparisons())
    for _, p in cond.all_comparisons():
        row = [p.definition, fmt(p.mean_diff, "+.4f"), fmt_ci(p.ci95, "+.4f"), fmt(p.median_diff, "+.4f"),
               f"{p.n_better} / {p.n_worse} / {p.n_tied}", fmt_p(p.wilcoxon_p), fmt_p(p.bootstrap_p)]
        if holm:
            row.append(f"{fmt_p(p.holm_p('wilcoxon_p'))} / {fmt_p(p.holm_p('bootstrap_p'))}")
        rows.append(row + [_seed_text(p), explain_verdict(p, alpha, require_seed_ci)[0]])
    header = ["Difference", "Mean", "95% CI (paired bootstrap)", "Median", "Better / worse / tied images",
              "Wilcoxon p", "Bootstrap p"]
    if holm:
        header.append("Holm-adjusted p (Wilcoxon / bootstrap)")
    header += ["Seed-level difference (95% CI)", "Verdict"]
    return ("table", header, rows)


def _finding(cond, p, alpha, require_seed_ci):
    label, reason = explain_verdict(p, alpha, require_seed_ci)
    a, b, arms = p.a, p.b, cond.arms
    parts = []
    if a in arms and b in arms:
        parts.append(f"{b} {fmt(arms[b].mean)} (95% CI {fmt_ci(arms[b].ci95)}) vs "
                     f"{a} {fmt(arms[a].mean)} (95% CI {fmt_ci(arms[a].ci95)}) mean Dice")
    parts.append(
        f"{p.definition} = {fmt(p.mean_diff, '+.4f')} per image (95% CI {fmt_ci(p.ci95, '+.4f')}, "
        f"Wilcoxon p = {fmt_p(p.wilcoxon_p)}, bootstrap p = {fmt_p(p.bootstrap_p)}, n = {p.n} images)"
    )
    if p.seed_diff:
        parts.append(f"seed-level difference {fmt(p.seed_diff.mean, '+.4f')} "
                     f"(95% CI {fmt_ci(p.seed_diff.ci95, '+.4f')})")
    text = f"{cond.name}: {verdict(p, alpha, require_seed_ci)}. " + "; ".join(parts) + "."
    if label == NO_DIFFERENCE:
        text += f" No gain or loss is claimed: {reason}."
    return label, text


def _config_blocks(config):
    rows, nested = [], []
    for k, v in config.items():
        if isinstance(v, (dict, list, tuple)) and any(isinstance(x, (dict, list)) for x in (v.values() if isinstance(v, dict) else v)):
            nested.append((k, v))
        elif isinstance(v, (list, tuple)):
            rows.append([str(k), ", ".join(str(x) for x in v)])
        else:
            rows.append([str(k), str(v)])
    blocks = [("table", ["Setting", "Value"], rows)] if rows else []
    for k, v in nested:
        blocks.append(("details", str(k), [("pre", json.dumps(v, indent=2, sort_keys=True, default=str))]))
    return blocks


def _new_hospital_lead(conds, alpha, require_seed_ci):
    """One sentence per other-hospital test set: both arms' mean Dice with CIs and the verdict."""
    parts = []
    for cond in conds:
        p, arms = cond.paired, cond.arms
        if not cond.is_extra or p.a not in arms or p.b not in arms:
            continue
        a, b = arms[p.a], arms[p.b]
        name = str(cond.test_set).split(":", 1)[1].strip()
        parts.append(
            f"{name} ({p.n} images, {cond.train}): {p.b} {fmt(b.mean)} (95% CI over seeds {fmt_ci(b.ci95)}, "
            f"seed SD {fmt(b.sd)}) vs {p.a} {fmt(a.mean)} ({fmt_ci(a.ci95)}, seed SD {fmt(a.sd)}); "
            f"paired difference {fmt(p.mean_diff, '+.4f')} ({fmt_ci(p.ci95, '+.4f')}): "
            f"{verdict(p, alpha, require_seed_ci)}"
        )
    if not parts:
        return None
    return "New data from another hospital (never used for training or checkpoint selection): " + "; ".join(parts) + "."


def _transform_table(conds, alpha, require_seed_ci):
    rows = [[str(p.label), str(cond.test_set), fmt(p.mean_diff, "+.4f"), fmt_ci(p.ci95, "+.4f"),
             fmt_p(p.holm.get("wilcoxon_p", p.wilcoxon_p)), f"{p.n_better} / {p.n_worse}",
             explain_verdict(p, alpha, require_seed_ci)[0]]
            for cond in conds for _, p in cond.all_comparisons() if p.label is not None]
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0], r[1]))
    header = ["Comparison", "Test set", "Dice change", "95% CI (paired bootstrap)", "Holm-adjusted Wilcoxon p",
              "Better / worse images", "Verdict"]
    return ("table", header, rows)


def _postprocess_table(conds):
    rows = [[str(cond.name), arm, fmt(e.mean), fmt(cond.postprocessed[arm].mean),
             fmt_ci(cond.postprocessed[arm].ci95)]
            for cond in conds for arm, e in cond.arms.items() if arm in (cond.postprocessed or {})]
    if not rows:
        return None
    return ("table", ["Condition", "Arm", "Mean Dice", "With post-processing", "95% CI (over seeds)"], rows)


def build_document(results, title="Original vs augmented training", alpha=0.05, require_seed_ci=True):
    """The report as a list of blocks (shared by the Markdown and HTML renderers).

    `results` is a `ComparisonResult` or the dict of a `metrics.json` (read with `ComparisonResult.from_dict`,
    so a missing field is a `ValueError` naming it).
    """
    results = ComparisonResult.from_dict(results)
    # New-hospital results first: that is the question a user of a model trained on few images asks.
    conds = sorted(results.conditions, key=lambda c: not c.is_extra)
    doc = [("h", 1, title), ("h", 2, "Findings")]
    counts = {HELPED: 0, HURT: 0, NO_DIFFERENCE: 0}
    main, other = [], []
    lead = _new_hospital_lead(results.conditions, alpha, require_seed_ci)
    if lead:
        doc.append(("p", lead))
    for cond in conds:
        for key, p in cond.all_comparisons():
            label, text = _finding(cond, p, alpha, require_seed_ci)
            if key == "paired":
                counts[label] += 1
                main.append(text)
            elif p.label is None:
                other.append(text)
    if main:
        doc.append(("p", (
            f"Augmentation helped in {counts[HELPED]} of {len(main)} conditions, hurt in {counts[HURT]}, "
            f"and made no significant difference in {counts[NO_DIFFERENCE]} "
            f"(significance level alpha = {alpha}; a gain or loss is stated only when the 95% CI of the paired "
            "per-image difference excludes 0, every p-value is below alpha"
            + (" and the seed-level 95% CI excludes 0" if require_seed_ci else "") + ")."
        )))
        doc.append(("ul", main))
    else:
        doc.append(("p", "No paired comparison in the results."))
    if other:
        doc.append(("h", 3, "Other comparisons (ablations)"))
        doc.append(("ul", other))
    if results.notes:
        doc.append(("h", 3, "Notes"))
        doc.append(("ul", [str(n) for n in results.notes]))

    transforms = _transform_table(results.conditions, alpha, require_seed_ci)
    if transforms:
        doc.append(("h", 2, "What each transform changes"))
        doc.append(("p", (
            "Each row compares the full policy with the same policy minus one transform (leave-one-out arms, "
            "same seeds and splits): a positive change means the transform raised Dice on that test set. "
            "p-values are Holm-adjusted per transform across test sets."
        )))
        doc.append(transforms)

    post = _postprocess_table(results.conditions)
    if post:
        doc.append(("h", 2, "Post-processing"))
        doc.append(("p", (
            "Mean Dice of the same predictions without and with post-processing (threshold 0.5, keep the two "
            "largest connected components, fill holes); training and checkpoint selection never use it."
        )))
        doc.append(post)

    doc.append(("h", 2, "Results per condition"))
    for cond in conds:
        doc += [("h", 3, str(cond.name)), _arm_table(cond), _paired_rows(cond, alpha, require_seed_ci)]

    if results.figures:
        doc.append(("h", 2, "Figures"))
        doc += [("img", str(caption), str(path)) for caption, path in results.figures.items()]

    doc.append(("h", 2, "Method"))
    doc.append(("p", (
        "Mean Dice per arm is the mean over training seeds of each seed's mean per-image test Dice; its CI is a "
        "Student-t interval over seeds (n/a with one seed), with a percentile bootstrap over images of the "
        "seed-averaged per-image Dice beside it. Paired differences pair the same test image across arms "
        "(per-image Dice averaged over seeds): mean and median difference, paired bootstrap percentile CI, "
        "Wilcoxon signed-rank test and paired bootstrap test (two-sided). The seed-level difference pairs seed k "
        "of one arm with seed k of the other (same split and initial weights) and gives a t interval over seeds."
    )))
    if results.config:
        doc.append(("h", 2, "Configuration"))
        doc.extend(_config_blocks(results.config))
    if is_number(results.wall_seconds):
        doc.append(("p", f"Wall time: {fmt(results.wall_seconds, '.0f')} s."))
    return doc


# ----------------------------------------------------------------- renderers


def _md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc):
    out = []
    for block in doc:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            _, header, rows = block
            lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |",
                     "|" + "|".join("---" for _ in header) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"**{block[1]}**\n\n![{block[1]}]({block[2]})")
        elif kind == "pre":
            out.append("```\n" + block[1] + "\n```")
        elif kind == "details":
            out.append(f"**{block[1]}**\n\n" + to_markdown(block[2]).rstrip("\n"))
    return "\n\n".join(out) + "\n"


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.6em 0 1.2em;font-size:0.92em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left}th{background:#f3f3f3}
td.helped{background:#e3f6e3}td.hurt{background:#fbe3e3}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-weight:600;margin-bottom:0.3em}pre{background:#f7f7f7;padding:0.8em;overflow:auto}
"""


def _data_uri(path):
    mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
    with open(path, "rb") as f:
        return f"data:{mime};base64," + base64.b64encode(f.read()).decode("ascii")


def to_html(doc, base_dir=None, embed_images=True, title="Report"):
    esc = html.escape
    out = []
    for block in doc:
        kind = block[0]
        if kind == "h":
            out.append(f"<h{block[1]}>{esc(block[2])}</h{block[1]}>")
        elif kind == "p":
            out.append(f"<p>{esc(block[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            _, header, rows = block
            head = "".join(f"<th>{esc(h)}</th>" for h in header)
            body = ""
            for row in rows:
                cells = []
                for c in row:
                    cls = ' class="helped"' if c == HELPED else ' class="hurt"' if c == HURT else ""
                    cells.append(f"<td{cls}>{esc(str(c))}</td>")
                body += "<tr>" + "".join(cells) + "</tr>"
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            caption, rel = block[1], block[2]
            src = rel
            full = rel if os.path.isabs(rel) or base_dir is None else os.path.join(base_dir, rel)
            if embed_images and os.path.isfile(full):
                src = _data_uri(full)
            out.append(f'<figure><figcaption>{esc(caption)}</figcaption><img src="{esc(src)}" alt="{esc(caption)}">'
                       "</figure>")
        elif kind == "pre":
            out.append(f"<pre>{esc(block[1])}</pre>")
        elif kind == "details":
            out.append(f"<details><summary>{esc(block[1])}</summary>"
                       + to_html(block[2], base_dir, embed_images, None) + "</details>")
    body = "\n".join(out)
    if title is None:
        return body
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def write_report(results, out_dir, title="Original vs augmented training", alpha=None, require_seed_ci=True,
                 embed_images=True, md_name="report.md", html_name="report.html"):
    """Writes `report.md` and `report.html` from a `ComparisonResult` (or a `metrics.json` dict).

    Only renders: every number shown is a number of `results` (nothing is
    computed here but the count of verdicts), so a report and the
    `metrics.json` written from the same result agree.

    Args:
        results: a `ComparisonResult`, or the dict of a `metrics.json`; a
            field the schema requires and the dict lacks raises a `ValueError`
            naming it.
        out_dir: folder to write; figure paths in `results.figures` are
            relative to it (or absolute).
        title: report title.
        alpha: significance level for the verdicts; default `results.alpha`
            (0.05 when the file has none).
        require_seed_ci: a gain / loss also needs the seed-level CI to exclude 0.
        embed_images: embed the figures in the HTML as base64 (self-contained
            file); otherwise reference them by their relative path.
        md_name, html_name: file names.

    Returns:
        `(md_path, html_path)`.
    """
    results = ComparisonResult.from_dict(results)
    if alpha is None:
        alpha = results.alpha
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    doc = build_document(results, title=title, alpha=alpha, require_seed_ci=require_seed_ci)
    md_path = os.path.join(out_dir, md_name)
    html_path = os.path.join(out_dir, html_name)
    from lung_keras._io import write_text

    write_text(md_path, to_markdown(doc))
    write_text(html_path, to_html(doc, base_dir=out_dir, embed_images=embed_images, title=title))
    return md_path, html_path
