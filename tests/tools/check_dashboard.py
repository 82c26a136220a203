#!/usr/bin/python3
"""Checks the Grafana dashboard and the Prometheus alert rules against a live /metrics.

Usage:
  check_dashboard.py DASHBOARD.json METRICS.txt [ALERTS.yml]
      Checks the dashboard's structure (uid, title, schemaVersion, panels with gridPos
      that do not overlap, targets with expr and refId, declared variables, the
      "model" variable), then every metric name used by any PromQL expression of the
      dashboard (panel targets, template variable queries, annotations) and of the
      alert rules (ALERTS.yml, default conf/prometheus/alerts.yml of this repository)
      against the metric names in METRICS.txt (the text of a live GET /metrics).
      Histogram series (_bucket, _sum, _count) are mapped back to their family.
      Series that Prometheus makes itself (up, ALERTS, scrape_*) and names recorded
      by recording rules are allowed. Exit 0 when all is known, 1 listing the
      problems, 2 on a usage error.
  check_dashboard.py --print-queries DASHBOARD.json [ALERTS.yml] [--var NAME=VALUE ...]
      Prints, as JSON, every expression with the dashboard's variables replaced
      (defaults: __rate_interval=1m, __interval=15s, __range=1m, others .*), and each
      template query as an instant query, so that a test can run them all against a
      real Prometheus.
  check_dashboard.py --self-test
      Checks the PromQL name extraction on known cases.

Standard library only (no YAML module): the alert file is read line by line for its
`expr:` (plain, quoted, or block scalars), `alert:` and `record:` keys.
"""
import json
import os
import re
import sys

# Series made by Prometheus itself, not by the daemon.
PROMETHEUS_MADE = {
    "up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds",
    "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}

KEYWORDS_WITH_LABEL_LIST = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = KEYWORDS_WITH_LABEL_LIST | {"and", "or", "unless", "offset", "bool", "atan2",
                                       "inf", "nan"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta",
    "deriv", "exp", "floor", "histogram_quantile", "histogram_count", "histogram_sum",
    "histogram_fraction", "histogram_stddev", "histogram_stdvar", "holt_winters",
    "hour", "idelta", "increase", "irate", "label_replace", "label_join", "ln", "log2",
    "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar",
    "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
    "count_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time",
    "last_over_time", "present_over_time", "mad_over_time", "acos", "acosh", "asin",
    "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad",
    "pi", "start", "end",
}
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range",
                    "__range_s", "__range_ms", "__dashboard", "__from", "__to", "__name",
                    "__org", "__user", "timeFilter", "__timeFilter"}
DEFAULT_VARS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1m",
                "__range_s": "60", "__range_ms": "60000", "__interval_ms": "15000"}

VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
IDENT_START = re.compile(r"[A-Za-z_:]")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


class PromQLError(ValueError):
    pass


def _skip_string(s, i):
    q = s[i]
    i += 1
    while i < len(s):
        if s[i] == "\\" and q != "`":
            i += 2
            continue
        if s[i] == q:
            return i + 1
        i += 1
    raise PromQLError("unterminated string")


def _skip_group(s, i, open_c, close_c):
    depth = 0
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            i = _skip_string(s, i)
            continue
        if c == open_c:
            depth += 1
        elif c == close_c:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise PromQLError("unbalanced %s%s" % (open_c, close_c))


def _skip_ws(s, i):
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def variables_used(expr):
    return {a or b or c for a, b, c in VAR_RE.findall(expr)}


def promql_names(expr):
    """(metric names, functions/aggregations called) used by a PromQL expression.
    Grafana variables are blanked first; label matchers, strings, ranges, numbers,
    durations and keywords are skipped."""
    s = VAR_RE.sub(" ", expr)
    names, calls = set(), set()
    i = 0
    while i < len(s):
        c = s[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < len(s) and s[i] != "\n":
                i += 1
        elif c in "\"'`":
            i = _skip_string(s, i)
        elif c == "{":
            i = _skip_group(s, i, "{", "}")
        elif c == "[":
            i = _skip_group(s, i, "[", "]")
        elif c.isdigit() or (c == "." and i + 1 < len(s) and s[i + 1].isdigit()):
            # numbers (1, 0.99, 1e-3, 0x1f) and durations (5m, 1h30m)
            i += 1
            while i < len(s) and (s[i].isalnum() or s[i] in "._"):
                if s[i] in "eE" and i + 1 < len(s) and s[i + 1] in "+-":
                    i += 1
                i += 1
        elif IDENT_START.match(c):
            m = IDENT.match(s, i)
            word = m.group(0)
            i = m.end()
            j = _skip_ws(s, i)
            nxt = s[j] if j < len(s) else ""
            low = word.lower()
            if low in KEYWORDS_WITH_LABEL_LIST:
                if nxt == "(":
                    i = _skip_group(s, j, "(", ")")
            elif low in KEYWORDS:
                pass
            elif word in AGGREGATIONS and (nxt == "(" or s.startswith(("by", "without"), j)):
                calls.add(word)
            elif nxt == "(":
                calls.add(word)
            else:
                names.add(word)
        else:
            i += 1
    return names, calls


# ---- exposition ------------------------------------------------------------------

def read_exposition(path):
    """{family: type} from # TYPE lines and the set of sample names."""
    families, samples = {}, set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    families[parts[2]] = parts[3]
                continue
            m = IDENT.match(line)
            if m:
                samples.add(m.group(0))
    return families, samples


def resolve(name, families, samples):
    """(family name, None) when the name is exported, (family, problem) when not."""
    for suffix, types in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if families.get(base) in types:
                return base, None
    if families.get(name) in ("histogram", "summary"):
        return name, "is a %s: use %s_bucket, _sum or _count" % (families[name], name)
    if name in samples or name in families:
        return name, None
    return name, "not exported by the daemon"


# ---- the alert rules (a minimal reader for the rule file's keys) -------------------

KEY_RE = re.compile(r"^(\s*)(-\s+)?(expr|alert|record):\s*(.*?)\s*$")


def _unquote(v):
    if len(v) >= 2 and v[0] == v[-1] == '"':
        return json.loads(v)
    if len(v) >= 2 and v[0] == v[-1] == "'":
        return v[1:-1].replace("''", "'")
    return v


def read_rules(path):
    """[(rule name, kind, expr)] for each rule of a Prometheus rule file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    rules, name, kind = [], None, None
    i = 0
    while i < len(lines):
        m = KEY_RE.match(lines[i])
        i += 1
        if not m:
            continue
        indent = len(m.group(1)) + len(m.group(2) or "")
        key, value = m.group(3), m.group(4)
        if value.startswith("#"):
            value = ""
        if key in ("alert", "record"):
            name, kind = _unquote(value), key
            continue
        body = []
        if value[:1] not in ("|", ">"):
            body.append(value)
        while i < len(lines):
            line = lines[i]
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            body.append(line)
            i += 1
        text = "\n".join(body).strip()
        if value[:1] not in ("|", ">"):
            text = _unquote(text)
        rules.append((name or "?", kind or "?", text))
        name, kind = None, None
    return rules


# ---- the dashboard ----------------------------------------------------------------

def all_panels(panels):
    for p in panels or []:
        yield p
        yield from all_panels(p.get("panels"))


def template_query_text(var):
    q = var.get("query")
    if isinstance(q, dict):
        q = q.get("query")
    return q if isinstance(q, str) else ""


def split_top_level_commas(s):
    parts, depth, cur, i = [], 0, "", 0
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            j = _skip_string(s, i)
            cur += s[i:j]
            i = j
            continue
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    return [p.strip() for p in parts]


def template_promql(q):
    """(PromQL of a Prometheus template query, label or None) or None."""
    q = q.strip()
    m = re.match(r"^label_values\((.*)\)$", q, re.S)
    if m:
        args = split_top_level_commas(m.group(1))
        if len(args) == 2:
            return args[0], args[1]
        return None  # label_values(label): no metric
    m = re.match(r"^query_result\((.*)\)$", q, re.S)
    if m:
        return m.group(1), None
    if re.match(r"^(metrics|label_names)\(", q):
        return None
    return q, None


def dashboard_exprs(dash):
    """[(where, kind, expr)]: kind is panel, template or annotation."""
    out = []
    for p in all_panels(dash.get("panels")):
        for t in p.get("targets") or []:
            if isinstance(t, dict) and isinstance(t.get("expr"), str):
                out.append(("panel %s %r target %s" % (p.get("id"), p.get("title"),
                                                        t.get("refId")), "panel", t["expr"]))
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") == "query":
            tq = template_promql(template_query_text(v))
            if tq:
                out.append(("variable $%s" % v.get("name"), "template", tq[0]))
    for a in (dash.get("annotations") or {}).get("list") or []:
        if isinstance(a.get("expr"), str) and a["expr"].strip():
            out.append(("annotation %r" % a.get("name"), "annotation", a["expr"]))
    return out


def check_structure(dash):
    errs = []
    for key, typ in (("uid", str), ("title", str), ("schemaVersion", int), ("panels", list)):
        if not isinstance(dash.get(key), typ) or dash.get(key) in ("", []):
            errs.append("dashboard: %r missing or not a %s" % (key, typ.__name__))
    if isinstance(dash.get("uid"), str) and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dash["uid"]):
        errs.append("dashboard: uid %r must be 1-40 of [A-Za-z0-9_-]" % dash["uid"])
    if isinstance(dash.get("schemaVersion"), int) and not 30 <= dash["schemaVersion"] <= 41:
        errs.append("dashboard: schemaVersion %d is outside 30..41" % dash["schemaVersion"])
    variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or []}
    inputs = {i.get("name") for i in dash.get("__inputs") or []}
    model = variables.get("model")
    if not model or model.get("type") != "query" or not re.match(
            r"label_values\(\s*imgclassd_requests_total\b.*,\s*model\s*\)$",
            template_query_text(model)):
        errs.append("templating: no query variable 'model' = "
                    "label_values(imgclassd_requests_total..., model)")
    if not any(v.get("type") == "datasource" for v in variables.values()) and not inputs:
        errs.append("templating: neither a datasource variable nor a __inputs datasource")
    declared = set(variables) | inputs | GRAFANA_BUILTINS

    def check_ds(where, ds):
        if isinstance(ds, dict):
            ds = ds.get("uid")
        if isinstance(ds, str):
            for name in variables_used(ds):
                if name not in declared:
                    errs.append("%s: datasource refers to undeclared ${%s}" % (where, name))

    ids, boxes = set(), []
    for p in all_panels(dash.get("panels")):
        where = "panel %s %r" % (p.get("id"), p.get("title"))
        if not isinstance(p.get("id"), int):
            errs.append("%s: id missing or not an integer" % where)
        elif p["id"] in ids:
            errs.append("%s: duplicate id" % where)
        else:
            ids.add(p["id"])
        if not p.get("type"):
            errs.append("%s: no type" % where)
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in "hwxy"):
            errs.append("%s: gridPos needs integer h, w, x, y" % where)
        else:
            if g["w"] < 1 or g["h"] < 1 or g["x"] < 0 or g["y"] < 0 or g["x"] + g["w"] > 24:
                errs.append("%s: gridPos %s outside the 24-column grid" % (where, g))
            for other, og in boxes:
                if (g["x"] < og["x"] + og["w"] and og["x"] < g["x"] + g["w"] and
                        g["y"] < og["y"] + og["h"] and og["y"] < g["y"] + g["h"]):
                    errs.append("%s: gridPos overlaps %s" % (where, other))
            boxes.append((where, g))
        check_ds(where, p.get("datasource"))
        if p.get("type") in ("row", "text", "dashlist", "news", "alertlist"):
            continue
        targets = p.get("targets")
        if not isinstance(targets, list) or not targets:
            errs.append("%s: no targets" % where)
            continue
        refs = set()
        for t in targets:
            ref = t.get("refId") if isinstance(t, dict) else None
            if not isinstance(ref, str) or not ref:
                errs.append("%s: a target has no refId" % where)
            elif ref in refs:
                errs.append("%s: duplicate refId %s" % (where, ref))
            else:
                refs.add(ref)
            if not isinstance(t, dict) or not isinstance(t.get("expr"), str) or not t["expr"].strip():
                errs.append("%s target %s: no expr" % (where, ref))
            else:
                check_ds("%s target %s" % (where, ref), t.get("datasource"))
    for where, _kind, expr in dashboard_exprs(dash):
        for name in sorted(variables_used(expr) - declared):
            errs.append("%s: uses undeclared variable $%s" % (where, name))
    return errs


# ---- main -------------------------------------------------------------------------

def default_alerts_path():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "conf", "prometheus", "alerts.yml"))


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def check(dash_path, metrics_path, alerts_path):
    problems = []
    try:
        dash = load_json(dash_path)
    except (OSError, ValueError) as e:
        print("%s: not valid JSON: %s" % (dash_path, e), file=sys.stderr)
        return 1
    problems += check_structure(dash)
    families, samples = read_exposition(metrics_path)
    if not samples:
        problems.append("%s: no samples: not a /metrics output?" % metrics_path)
    rules = read_rules(alerts_path)
    if not rules:
        problems.append("%s: no rule expressions found" % alerts_path)
    recorded = {name for name, kind, _ in rules if kind == "record"}
    exprs = dashboard_exprs(dash) + [("%s %s" % (kind, name), "rule", expr)
                                      for name, kind, expr in rules]
    used, allowed = {}, set()
    for where, _kind, expr in exprs:
        try:
            names, calls = promql_names(expr)
        except PromQLError as e:
            problems.append("%s: cannot read %r: %s" % (where, expr, e))
            continue
        for c in sorted(calls - FUNCTIONS - AGGREGATIONS):
            problems.append("%s: unknown function %s()" % (where, c))
        if not names and "vector(" not in expr and "time()" not in expr:
            problems.append("%s: no metric name in %r" % (where, expr))
        for n in names:
            if n in PROMETHEUS_MADE or n in recorded:
                allowed.add(n)
                continue
            base, problem = resolve(n, families, samples)
            used.setdefault(base, set())
            if problem:
                problems.append("%s: %s %s" % (where, n, problem))
            used[base].add(where)
    n_dash = sum(1 for e in exprs if e[1] != "rule")
    if problems:
        print("check_dashboard: %d problem(s):" % len(problems))
        for p in problems:
            print("  " + p)
        return 1
    print("check_dashboard: OK: %d dashboard and %d rule expressions use %d metric "
          "families, all in %s (%s made by Prometheus)" % (
              n_dash, len(rules), len(used), os.path.basename(metrics_path),
              ", ".join(sorted(allowed)) or "none"))
    for base in sorted(used):
        print("  %-45s %d use(s)" % (base, len(used[base])))
    return 0


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in values:
            return values[name]
        if name in DEFAULT_VARS:
            return DEFAULT_VARS[name]
        return ".*"
    return VAR_RE.sub(repl, expr)


def print_queries(dash_path, alerts_path, values):
    dash = load_json(dash_path)
    out = []
    for where, kind, expr in dashboard_exprs(dash):
        if kind == "template":
            v = next(v for v in dash["templating"]["list"] if "$%s" % v.get("name") == where.split()[-1])
            sel, label = template_promql(template_query_text(v))
            expr = "group by (%s) (%s)" % (label, sel) if label else sel
        out.append({"where": where, "kind": kind, "expr": substitute(expr, values)})
    if alerts_path:
        for name, kind, expr in read_rules(alerts_path):
            out.append({"where": "%s %s" % (kind, name), "kind": "rule", "expr": expr})
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


def self_test():
    cases = [
        ('sum by (le) (rate(x_bucket{job=~"$job", le!="1"}[$__rate_interval]))', {"x_bucket"}),
        ("histogram_quantile(0.99, sum by (job, le) (rate(a_bucket[5m]))) > 1", {"a_bucket"}),
        ('a / on (job, instance) group_left (version) b{v="x}y"} offset 10m', {"a", "b"}),
        ("sum without (instance) (rate(c[1m])) and ignoring(code) d > bool 0.5e-3", {"c", "d"}),
        ("sum(e) by (model) / count(f) without (x)", {"e", "f"}),
        ("topk(5, g) unless h @ start() or i offset -1h30m", {"g", "h", "i"}),
        ('label_replace(j, "dst", "$1", "src", "(.*)") * 0x1f', {"j"}),
        ("time() - process_start_time_seconds # a comment: not_a_metric", {"process_start_time_seconds"}),
        ("up == 0", {"up"}),
        ("avg_over_time(k[5m:1m]) / ${datasource} l", {"k", "l"}),
        ("ALERTS{alertname=~\"Imgclassd.*\"} and Inf > NaN", {"ALERTS"}),
        ("count_values(\"v\", m) or quantile(0.9, n)", {"m", "n"}),
    ]
    bad = 0
    for expr, want in cases:
        got = promql_names(expr)[0]
        if got != want:
            print("self-test FAIL: %r -> %s, want %s" % (expr, sorted(got), sorted(want)))
            bad += 1
    fam = {"h": "histogram", "c": "counter", "s": "summary"}
    for name, want in (("h_bucket", ("h", None)), ("h_count", ("h", None)), ("s_sum", ("s", None)),
                       ("c", ("c", None)), ("c_total", ("c_total", "not exported by the daemon"))):
        if resolve(name, fam, set()) != want:
            print("self-test FAIL: resolve(%s) = %s" % (name, resolve(name, fam, set())))
            bad += 1
    if resolve("h", fam, set())[1] is None or resolve("s_bucket", fam, set())[1] is None:
        print("self-test FAIL: a bare histogram or a summary _bucket passed")
        bad += 1
    tq = template_promql('label_values(imgclassd_requests_total{job=~"$job", a="x,y"}, model)')
    if tq != ('imgclassd_requests_total{job=~"$job", a="x,y"}', "model"):
        print("self-test FAIL: template_promql -> %r" % (tq,))
        bad += 1
    print("self-test: %d passed, %d failed" % (len(cases) + 7 - bad, bad))
    return 1 if bad else 0


def main(argv):
    args = argv[1:]
    if args == ["--self-test"]:
        return self_test()
    if args and args[0] == "--print-queries":
        values, rest = {}, []
        it = iter(args[1:])
        for a in it:
            if a == "--var":
                k, _, v = next(it, "").partition("=")
                values[k] = v
            else:
                rest.append(a)
        if len(rest) not in (1, 2):
            print(__doc__, file=sys.stderr)
            return 2
        return print_queries(rest[0], rest[1] if len(rest) == 2 else default_alerts_path(), values)
    if len(args) not in (2, 3) or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    return check(args[0], args[1], args[2] if len(args) == 3 else default_alerts_path())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
