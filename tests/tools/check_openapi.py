#!/usr/bin/python3
"""Checks one real answer of imgclassd against its OpenAPI description.

Usage:
    check_openapi.py SPEC METHOD PATH STATUS BODY_FILE [CONTENT_TYPE]

SPEC is openapi.yaml; METHOD, PATH (concrete, e.g.
/v1/models/mobilenet_v2:classify?top_k=3), STATUS and the answer's body (a
file) and Content-Type are the request's and the answer's. The operation is
found by matching PATH against the spec's path templates (the template with
the most literal characters wins, so /v1/models/m:classify is classify, not
/v1/models/{name}); HEAD uses the GET operation and checks no body. A
request that no operation describes uses the spec's
x-imgclassd-unlisted-requests (unknown-path, other-method). The response is
the one for STATUS, else its range (4XX), else "default"; its $refs are
resolved and a JSON body is validated against its schema with jsonschema's
Draft202012Validator. For other media types (the metrics' text) only the
content type is checked. Without CONTENT_TYPE, application/json is assumed
when the response documents it, else its only media type.

Exit status: 0 the answer is as documented; 1 it is not (each mismatch is
named: where in the body, and why); 2 the operation or the status is not
documented (a failure too); 3 usage error or unreadable spec or body.
"""
import json
import re
import sys
import urllib.parse

try:
    import yaml
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
except ImportError as e:  # pragma: no cover
    sys.stderr.write("check_openapi.py: %s (apt-get install python3-yaml "
                     "python3-jsonschema)\n" % e)
    sys.exit(3)

OK, INVALID, UNDOCUMENTED, USAGE = 0, 1, 2, 3
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
EXT = "x-imgclassd-unlisted-requests"


class Fail(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


# ---- $ref resolution ---------------------------------------------------------------

def pointer(spec, ref):
    """The node a local reference ("#/components/schemas/Error") names."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise Fail(USAGE, "only local $refs are supported, not %r" % (ref,))
    node = spec
    for part in ref[1:].split("/")[1:]:
        part = urllib.parse.unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise Fail(USAGE, "unresolved $ref %s" % ref)
    return node


def resolve_object(spec, obj):
    """A response, header or media type object with its $ref chain followed
    (sibling fields of the reference override the target's)."""
    seen = set()
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        if ref in seen:
            raise Fail(USAGE, "circular $ref %s" % ref)
        seen.add(ref)
        target = pointer(spec, ref)
        obj = dict(target, **{k: v for k, v in obj.items() if k != "$ref"})
    return obj


def inline_schema(spec, schema, stack=()):
    """A copy of schema with every $ref replaced by its target (2020-12
    semantics: a $ref with sibling keywords applies both). Each inlined
    component keeps its name in $comment, for the messages."""
    if isinstance(schema, list):
        return [inline_schema(spec, s, stack) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema and isinstance(schema["$ref"], str):
        ref = schema["$ref"]
        if ref in stack:
            raise Fail(USAGE, "recursive schema %s is not supported" % ref)
        target = inline_schema(spec, pointer(spec, ref), stack + (ref,))
        if isinstance(target, dict):
            target = dict(target)
            target.setdefault("$comment", ref)
        rest = {k: inline_schema(spec, v, stack) for k, v in schema.items() if k != "$ref"}
        if not rest:
            return target
        rest["allOf"] = list(rest.get("allOf", [])) + [target]
        return rest
    return {k: inline_schema(spec, v, stack) for k, v in schema.items()}


# ---- finding the operation and the response ----------------------------------------

def template_regex(template):
    out, literal = [], 0
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            out.append("[^/]+")
        else:
            out.append(re.escape(piece))
            literal += len(piece)
    return re.compile("".join(out) + r"\Z"), literal


def find_path(spec, path):
    """(template, path item) of the best matching path, or (None, None)."""
    best, best_len, ties = None, -1, []
    for template, item in (spec.get("paths") or {}).items():
        rx, literal = template_regex(template)
        if not rx.match(path):
            continue
        if literal > best_len:
            best, best_len, ties = template, literal, []
        elif literal == best_len:
            ties.append(template)
    if best is not None and ties:
        raise Fail(UNDOCUMENTED, "%s matches several paths equally: %s" %
                   (path, ", ".join([best] + ties)))
    return best, (spec["paths"][best] if best is not None else None)


def find_response(spec, responses, status, where):
    responses = {str(k): v for k, v in (responses or {}).items()}
    for key in (str(status), "%dXX" % (status // 100), "%dxx" % (status // 100), "default"):
        if key in responses:
            return key, resolve_object(spec, responses[key])
    raise Fail(UNDOCUMENTED, "status %d is not documented for %s (documented: %s)" %
               (status, where, ", ".join(sorted(responses)) or "none"))


# ---- media types -------------------------------------------------------------------

def parse_media_type(text):
    parts = [p.strip() for p in text.split(";")]
    mtype = parts[0].lower()
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"').lower()
    return mtype, params


def media_matches(spec_key, actual):
    """0 when spec_key does not cover actual, else a specificity (higher is
    more specific)."""
    st, sp = parse_media_type(spec_key)
    at, ap = parse_media_type(actual)
    if any(ap.get(k) != v for k, v in sp.items()):
        return 0
    if st == at:
        return 3 + len(sp)
    if st.endswith("/*") and at.split("/")[0] == st.split("/")[0]:
        return 2
    if st == "*/*":
        return 1
    return 0


def is_json(media_type):
    t, _ = parse_media_type(media_type)
    return t == "application/json" or t.endswith("+json")


# ---- validation messages -----------------------------------------------------------

def json_path(error):
    out = "$"
    for p in error.absolute_path:
        out += "[%d]" % p if isinstance(p, int) else (
            ".%s" % p if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", p) else "[%s]" % json.dumps(p))
    return out


def short(text, n=300):
    return text if len(text) <= n else text[:n] + "..."


def describe(error, indent="  "):
    """One line for the error, and for a oneOf/anyOf that failed, why each
    branch did not fit."""
    where = json_path(error)
    message = error.message
    if error.validator in ("oneOf", "anyOf"):
        n = len(error.validator_value or [])
        message = ("fits none of the %d alternatives" % n if error.context
                   else "fits more than one of the %d alternatives" % n)
    lines = ["%s%s: %s" % (indent, where, short(message))]
    if error.validator in ("oneOf", "anyOf") and error.context:
        by_branch = {}
        for sub in error.context:
            by_branch.setdefault(sub.schema_path[0] if sub.schema_path else "?", []).append(sub)
        branches = error.schema.get(error.validator, [])
        for idx in sorted(by_branch, key=str):
            name = "branch %s" % idx
            if isinstance(idx, int) and idx < len(branches) and isinstance(branches[idx], dict):
                ref = branches[idx].get("$comment")
                if ref:
                    name += " (%s)" % ref.rsplit("/", 1)[-1]
            subs = sorted(by_branch[idx], key=lambda e: (len(e.absolute_path), e.message))
            lines.append("%s  %s: %s" % (indent, name, "; ".join(
                "%s: %s" % (json_path(s), short(s.message, 160)) for s in subs[:4])))
    return lines


def reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError("duplicate member %r" % k)
        seen[k] = v
    return seen


# ---- main --------------------------------------------------------------------------

def check(spec, method, raw_path, status, body, content_type):
    path = urllib.parse.unquote(urllib.parse.urlsplit(raw_path).path)
    method = method.lower()
    template, item = find_path(spec, path)
    ext = spec.get(EXT) or {}
    head = method == "head"
    if item is None:
        where = "%s %s (no documented path; %s.unknown-path)" % (method.upper(), path, EXT)
        responses = ext.get("unknown-path")
    else:
        item = resolve_object(spec, item)
        op = item.get(method)
        if op is None and head:
            op = item.get("get")
        if op is not None:
            where = "%s %s" % (method.upper(), template)
            responses = op.get("responses")
        else:
            where = "%s %s (no %s operation; %s.other-method)" % (
                method.upper(), template, method.upper(), EXT)
            responses = ext.get("other-method")
    if not responses:
        raise Fail(UNDOCUMENTED, "%s is not documented" % where)
    key, response = find_response(spec, responses, status, where)
    where = "%s -> %s" % (where, key)
    content = response.get("content") or {}

    if head or not content:
        if body:
            raise Fail(INVALID, "%s: %s, but the answer has a %d-byte body" % (
                where, "HEAD answers have no body" if head else "documented without a body",
                len(body)))
        return "%s: no body, as documented" % where

    if content_type:
        scored = sorted(((media_matches(k, content_type), k) for k in content), reverse=True)
        if not scored or scored[0][0] == 0:
            raise Fail(INVALID, "%s: Content-Type %r is not documented (documented: %s)" % (
                where, content_type, ", ".join(content)))
        media_key = scored[0][1]
    elif "application/json" in content:
        media_key = "application/json"
    elif len(content) == 1:
        media_key = next(iter(content))
    else:
        raise Fail(USAGE, "%s: documents %s; give the answer's Content-Type" % (
            where, ", ".join(content)))
    media = resolve_object(spec, content[media_key])
    if not is_json(media_key):
        return "%s: %s (the body is not checked)" % (where, media_key)

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Fail(INVALID, "%s: the body is not UTF-8: %s" % (where, e))
    if not text.strip():
        raise Fail(INVALID, "%s: the body is empty; %s expected" % (where, media_key))
    try:
        instance = json.loads(text, parse_constant=reject_constant,
                              object_pairs_hook=no_duplicates)
    except ValueError as e:
        raise Fail(INVALID, "%s: the body is not JSON (%s): %s" % (where, e, short(text, 200)))
    if "schema" not in media:
        return "%s: %s, no schema to check" % (where, media_key)
    schema = inline_schema(spec, media["schema"])
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        raise Fail(USAGE, "%s: the documented schema is not valid: %s" % (where, short(str(e))))
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance),
                    key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        name = media["schema"].get("$ref", "the schema") if isinstance(media["schema"], dict) \
            else "the schema"
        lines = ["%s: the body does not match %s:" % (where, name)]
        for e in errors[:10]:
            lines += describe(e)
        if len(errors) > 10:
            lines.append("  ... and %d more" % (len(errors) - 10))
        lines.append("  body: %s" % short(text, 500))
        raise Fail(INVALID, "\n".join(lines))
    return "%s: %s valid" % (where, media_key)


def main(argv):
    if len(argv) not in (6, 7):
        sys.stderr.write("usage: check_openapi.py SPEC METHOD PATH STATUS BODY_FILE "
                         "[CONTENT_TYPE]\n")
        return USAGE
    spec_path, method, path, status, body_path = argv[1:6]
    content_type = argv[6] if len(argv) == 7 and argv[6] else None
    try:
        if not re.match(r"^[1-5][0-9][0-9]$", status):
            raise Fail(USAGE, "STATUS must be an HTTP status code, not %r" % status)
        try:
            with open(spec_path, encoding="utf-8") as f:
                spec = yaml.safe_load(f)
            with open(body_path, "rb") as f:
                body = f.read()
        except (OSError, yaml.YAMLError) as e:
            raise Fail(USAGE, str(e))
        if not isinstance(spec, dict) or "paths" not in spec:
            raise Fail(USAGE, "%s is not an OpenAPI document" % spec_path)
        print("openapi ok: " + check(spec, method, path, int(status), body, content_type))
        return OK
    except Fail as f:
        sys.stderr.write("openapi: %s %s %s: %s\n" % (method.upper(), path, status, f.msg))
        return f.code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
