"""The Kibana saved objects of ``deploy/kibana/`` and their import script.

Kibana cannot run here, so the objects are checked against what Kibana 8 requires of them: the NDJSON
parses line by line, ids are unique, every reference resolves inside the file, attributes are ones
Kibana's saved-object schemas accept, and every field an object uses (time fields, columns, sorts,
query and filter fields, aggregation fields) is mapped by ``config/elasticsearch/*.json`` with a
type Kibana can use for that purpose. The checker is tested on deliberately wrong objects too, so
that a checker that finds nothing cannot pass for a clean file.

The import script is standard-library only and is loaded from its path; its HTTP side is tested
against a small fake Kibana on loopback.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import importlib.util
import io
import json
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline.search import INDEX_NAMES, load_template
from pipeline.settings import Settings
from tests.conftest import REPO

KIBANA_DIR = REPO / "deploy" / "kibana"
NDJSON_FILES = sorted(KIBANA_DIR.glob("*.ndjson"))
SCRIPT = KIBANA_DIR / "import_objects.py"
COMPOSE_FILE = REPO / "docker-compose.yml"
DEFAULT_PREFIX = "crosswire"

# --- what Kibana accepts -------------------------------------------------------------------------

NUMERIC = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
)
DATE = frozenset({"date", "date_nanos"})
# Types with doc values that Kibana marks aggregatable and sortable (text is neither: no fielddata).
AGGREGATABLE = NUMERIC | DATE | frozenset({"keyword", "constant_keyword", "wildcard", "boolean", "ip", "version"})

# purpose -> mapping types allowed; None: any mapped leaf field (Discover shows and filters anything).
ALLOWED: dict[str, frozenset[str] | None] = {
    "time": DATE,
    "date_histogram": DATE,
    "terms": AGGREGATABLE,
    "cardinality": AGGREGATABLE,
    "sort": AGGREGATABLE,
    "min_max": NUMERIC | DATE,
    "numeric": NUMERIC,
    "column": None,
    "query": None,
    "filter": None,
}

# Aggregation-based visualizations: agg type -> purpose of its ``field`` param.
AGG_PURPOSE = {
    "terms": "terms",
    "significant_terms": "terms",
    "rare_terms": "terms",
    "date_histogram": "date_histogram",
    "histogram": "numeric",
    "range": "numeric",
    "cardinality": "cardinality",
    "min": "min_max",
    "max": "min_max",
    "avg": "numeric",
    "sum": "numeric",
    "median": "numeric",
    "percentiles": "numeric",
    "std_dev": "numeric",
    "top_hits": "column",
}
FIELDLESS_AGGS = {"count"}

# Lens formBased columns: operationType -> purpose of ``sourceField``.
LENS_PURPOSE = {
    "terms": "terms",
    "date_histogram": "date_histogram",
    "unique_count": "cardinality",
    "min": "min_max",
    "max": "min_max",
    "average": "numeric",
    "sum": "numeric",
    "median": "numeric",
    "percentile": "numeric",
    "standard_deviation": "numeric",
    "range": "numeric",
    "last_value": "column",
}
LENS_RECORDS = "___records___"  # Lens's pseudo-field of the count operation

# Attribute names Kibana 8.17's saved-object schemas accept (search: the 8.8.0 schema and its model
# versions; dashboard: ``unknowns: 'forbid'``), so a typo fails here rather than at import.
KNOWN_ATTRIBUTES = {
    "index-pattern": {
        "title", "name", "timeFieldName", "fields", "fieldFormatMap", "fieldAttrs", "runtimeFieldMap",
        "sourceFilters", "typeMeta", "allowNoIndex", "type", "allowHidden",
    },
    "search": {
        "title", "description", "columns", "sort", "grid", "rowHeight", "rowsPerPage", "hideChart",
        "breakdownField", "kibanaSavedObjectMeta", "isTextBasedQuery", "usesAdHocDataView", "timeRestore",
        "timeRange", "refreshInterval", "viewMode", "hideAggregatedPreview", "hits", "version",
        "sampleSize", "headerRowHeight", "density",
    },
    "visualization": {
        "title", "description", "visState", "uiStateJSON", "version", "kibanaSavedObjectMeta", "savedSearchRefName",
    },
    "dashboard": {
        "title", "description", "kibanaSavedObjectMeta", "timeRestore", "timeFrom", "timeTo",
        "refreshInterval", "controlGroupInput", "panelsJSON", "optionsJSON", "hits", "version",
    },
    "lens": {"title", "description", "visualizationType", "state"},
}
REQUIRED_ATTRIBUTES = {
    "index-pattern": {"title"},
    "search": {"title", "kibanaSavedObjectMeta"},
    "visualization": {"title", "visState", "kibanaSavedObjectMeta"},
    "dashboard": {"title", "panelsJSON"},
    "lens": {"title", "visualizationType", "state"},
}
VIS_SCHEMAS = {
    "histogram": {"metric", "radius", "segment", "group", "split"},
    "table": {"metric", "bucket", "split"},
}
DASHBOARD_COLUMNS = 48  # Kibana's dashboard grid width

SOURCE_INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
KQL_FIELD = re.compile(r"(?<![\w.\"'])([A-Za-z_@][\w.@-]*)\s*(?::|<=|>=|<|>)")


# --- loading ------------------------------------------------------------------------------------


def load_objects(paths: list[Path] = NDJSON_FILES) -> list[dict[str, Any]]:
    objects = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                objects.append(json.loads(line))
    return objects


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    assert NDJSON_FILES, "deploy/kibana/ has no .ndjson file"
    return load_objects()


def of_type(objects: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["type"] == type_]


def import_script() -> ModuleType:
    """The import script as a module (it is not part of the package)."""
    name = "crosswire_kibana_import"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return import_script()


# --- the field checker ---------------------------------------------------------------------------


def mapped_fields(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Every field path of a mapping with its type: object paths (``sides.value``) and multi-fields
    (``title.keyword``) included; an object without a ``type`` is ``object``."""
    out: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        out[path] = spec.get("type", "object" if "properties" in spec else "object")
        if "properties" in spec:
            out.update(mapped_fields(spec["properties"], f"{path}."))
        for sub, sub_spec in spec.get("fields", {}).items():
            out[f"{path}.{sub}"] = sub_spec["type"]
    return out


def index_for_title(title: str, prefix: str = DEFAULT_PREFIX) -> str | None:
    """The index template (``articles``, ...) whose index pattern is this data view's title."""
    for name in INDEX_NAMES:
        if title in load_template(name, prefix)["index_patterns"]:
            return name
    return None


def fields_of_index(name: str, prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    return mapped_fields(load_template(name, prefix)["template"]["mappings"]["properties"])


@dataclass(frozen=True)
class FieldUse:
    """One field an object uses: in which data view, and for what."""

    obj: str  # "type:id"
    data_view: str | None  # data view id; None: no single data view (a dashboard query)
    field: str
    purpose: str
    where: str


def kql_fields(query: str) -> list[str]:
    """Field names of a KQL query: ``field : value``, ``field >= value`` (quoted text excluded).

    A small scanner, not a KQL parser: enough for the queries shipped here; free-text terms without a
    field name use no field."""
    unquoted = re.sub(r'"(?:\\.|[^"\\])*"', '""', query)
    return KQL_FIELD.findall(unquoted)


def _refs_by_name(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in obj.get("references", [])}


_FIELD_KEYED = {"range", "match_phrase", "match", "term", "terms", "prefix", "wildcard"}


def _query_dsl_fields(dsl: Any) -> list[str]:
    """Fields of a filter's query DSL: exists, range, match_phrase, match, term, terms, bool."""
    out: list[str] = []
    if not isinstance(dsl, dict):
        return out
    for key, value in dsl.items():
        if key == "exists" and isinstance(value, dict) and "field" in value:
            out.append(value["field"])
        elif key in _FIELD_KEYED and isinstance(value, dict):
            out.extend(k for k in value if k not in {"boost", "_name"})
        elif key == "bool" and isinstance(value, dict):
            for clauses in value.values():
                for clause in clauses if isinstance(clauses, list) else [clauses]:
                    out.extend(_query_dsl_fields(clause))
    return out


def _search_source_uses(obj: dict[str, Any], source_json: str, default_view: str | None) -> list[FieldUse]:
    key = f"{obj['type']}:{obj['id']}"
    source = json.loads(source_json)
    refs = _refs_by_name(obj)
    uses = []
    query = source.get("query") or {}
    if query.get("language") == "kuery":
        for field in kql_fields(query.get("query") or ""):
            uses.append(FieldUse(key, default_view, field, "query", "searchSourceJSON.query"))
    for i, flt in enumerate(source.get("filter") or []):
        meta = flt.get("meta", {})
        ref = refs.get(meta.get("indexRefName", ""))
        view = ref["id"] if ref else meta.get("index", default_view)
        fields = _query_dsl_fields(flt.get("query", {}))
        if meta.get("key"):
            fields.append(meta["key"])
        for field in dict.fromkeys(fields):
            uses.append(FieldUse(key, view, field, "filter", f"searchSourceJSON.filter[{i}]"))
    return uses


def _source_view(obj: dict[str, Any]) -> str | None:
    source = json.loads(obj["attributes"].get("kibanaSavedObjectMeta", {}).get("searchSourceJSON") or "{}")
    ref = _refs_by_name(obj).get(source.get("indexRefName", ""))
    return ref["id"] if ref else None


def field_uses(obj: dict[str, Any]) -> list[FieldUse]:
    """Every field reference of one saved object (see the module docstring for what is covered)."""
    key = f"{obj['type']}:{obj['id']}"
    attrs = obj.get("attributes", {})
    source_json = attrs.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
    uses: list[FieldUse] = []
    if obj["type"] == "index-pattern":
        if attrs.get("timeFieldName"):
            uses.append(FieldUse(key, obj["id"], attrs["timeFieldName"], "time", "timeFieldName"))
        return uses
    view = _source_view(obj) if source_json else None
    if source_json:
        uses += _search_source_uses(obj, source_json, view)
    if obj["type"] == "search":
        uses += [FieldUse(key, view, c, "column", "columns") for c in attrs.get("columns", [])]
        sort = attrs.get("sort", [])
        pairs = [sort] if sort and isinstance(sort[0], str) else sort
        uses += [FieldUse(key, view, field, "sort", "sort") for field, _direction in pairs]
    elif obj["type"] == "visualization":
        for agg in json.loads(attrs["visState"]).get("aggs", []):
            if agg["type"] in FIELDLESS_AGGS:
                continue
            field = agg.get("params", {}).get("field")
            assert agg["type"] in AGG_PURPOSE, f"{key}: the checker does not know agg type {agg['type']!r}"
            assert field, f"{key}: agg {agg['id']} ({agg['type']}) has no field"
            uses.append(FieldUse(key, view, field, AGG_PURPOSE[agg["type"]], f"visState.aggs[{agg['id']}]"))
    elif obj["type"] == "lens":
        refs = _refs_by_name(obj)
        state = attrs["state"]
        layers = state.get("datasourceStates", {}).get("formBased", {}).get("layers", {})
        for layer_id, layer in layers.items():
            ref = refs.get(f"indexpattern-datasource-layer-{layer_id}")
            layer_view = ref["id"] if ref else None
            for col_id, column in layer.get("columns", {}).items():
                field = column.get("sourceField")
                if not field or field == LENS_RECORDS:
                    continue
                operation = column["operationType"]
                assert operation in LENS_PURPOSE, f"{key}: the checker does not know Lens operation {operation!r}"
                where = f"state.layers[{layer_id}].columns[{col_id}]"
                uses.append(FieldUse(key, layer_view, field, LENS_PURPOSE[operation], where))
        query = state.get("query") or {}
        if query.get("language") == "kuery":
            uses += [FieldUse(key, None, f, "query", "state.query") for f in kql_fields(query.get("query", ""))]
    return uses


def field_problems(objects: list[dict[str, Any]], prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Every field use whose field is not mapped, or mapped with a type unfit for its purpose."""
    titles = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    indices = {view: index_for_title(title, prefix) for view, title in titles.items()}
    fields = {name: fields_of_index(name, prefix) for name in INDEX_NAMES}
    problems = []
    for use in (u for o in objects for u in field_uses(o)):
        where = f"{use.obj} {use.where}: {use.field!r} ({use.purpose})"
        if use.data_view is None:
            candidates = [f for f in fields.values() if use.field in f]
            if not candidates:
                problems.append(f"{where}: not mapped in any index")
            continue
        if use.data_view not in indices:
            problems.append(f"{where}: data view {use.data_view!r} is not defined in deploy/kibana/")
            continue
        index = indices[use.data_view]
        if index is None:
            problems.append(f"{where}: data view {titles[use.data_view]!r} matches no index template")
            continue
        mapped = fields[index].get(use.field)
        if mapped is None:
            problems.append(f"{where}: not mapped in {index}")
        elif mapped == "object":
            problems.append(f"{where}: is an object in {index}; use one of its leaf fields")
        elif ALLOWED[use.purpose] is not None and mapped not in ALLOWED[use.purpose]:
            problems.append(f"{where}: type {mapped} in {index} cannot be used for {use.purpose}")
    return problems


# --- the NDJSON file -----------------------------------------------------------------------------


def test_ndjson_parses_line_by_line() -> None:
    assert NDJSON_FILES
    for path in NDJSON_FILES:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n"), f"{path.name}: one trailing newline"
        for number, line in enumerate(text.splitlines(), start=1):
            assert line.strip(), f"{path.name}:{number}: blank line"
            obj = json.loads(line)
            assert isinstance(obj, dict), f"{path.name}:{number}: not an object"
            assert {"type", "id", "attributes", "references"} <= set(obj), f"{path.name}:{number}"
            assert isinstance(obj["references"], list)


def test_ids_are_unique_and_stable(objects: list[dict[str, Any]]) -> None:
    ids = [o["id"] for o in objects]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for obj in objects:
        # Stable, readable ids: the import overwrites by id, and links use them.
        assert re.fullmatch(r"crosswire-[a-z0-9-]+", obj["id"]), obj["id"]


def test_the_issue_asks_for_these_objects(objects: list[dict[str, Any]]) -> None:
    types = {o["type"] for o in objects}
    assert types <= set(KNOWN_ATTRIBUTES), f"unexpected types {types - set(KNOWN_ATTRIBUTES)}"
    titles = {o["attributes"]["title"] for o in of_type(objects, "index-pattern")}
    assert titles == {f"{DEFAULT_PREFIX}-{name}*" for name in INDEX_NAMES}
    assert len(of_type(objects, "search")) >= 2
    assert len(of_type(objects, "dashboard")) == 1
    assert len(of_type(objects, "visualization")) + len(of_type(objects, "lens")) >= 3


def test_data_views_resolve_to_their_own_template(objects: list[dict[str, Any]]) -> None:
    for view in of_type(objects, "index-pattern"):
        name = index_for_title(view["attributes"]["title"])
        assert name is not None, view["attributes"]["title"]
        assert view["id"] == f"crosswire-{name}"


def test_references_resolve_inside_the_files(objects: list[dict[str, Any]]) -> None:
    known = {(o["type"], o["id"]) for o in objects}
    for obj in objects:
        names = [r["name"] for r in obj["references"]]
        assert len(names) == len(set(names)), f"{obj['id']}: reference names repeat"
        for ref in obj["references"]:
            assert set(ref) == {"name", "type", "id"}, ref
            assert (ref["type"], ref["id"]) in known, f"{obj['id']}: {ref} points at nothing in deploy/kibana/"


def test_search_sources_name_their_references(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        source_json = obj["attributes"].get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
        if source_json is None:
            continue
        source = json.loads(source_json)
        refs = _refs_by_name(obj)
        assert "index" not in source, f"{obj['id']}: inline data view id; use indexRefName + references"
        names = [source["indexRefName"]] if "indexRefName" in source else []
        names += [f["meta"]["indexRefName"] for f in source.get("filter", []) if "indexRefName" in f["meta"]]
        if obj["type"] in {"search", "visualization"}:
            assert source.get("indexRefName") == SOURCE_INDEX_REF, obj["id"]
        for name in names:
            assert name in refs and refs[name]["type"] == "index-pattern", f"{obj['id']}: {name}"
        assert source["query"]["language"] == "kuery"


def test_attributes_are_ones_kibana_accepts(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        attrs = set(obj["attributes"])
        required = REQUIRED_ATTRIBUTES[obj["type"]]
        assert required <= attrs, f"{obj['id']}: missing {required - attrs}"
        assert attrs <= KNOWN_ATTRIBUTES[obj["type"]], f"{obj['id']}: unknown {attrs - KNOWN_ATTRIBUTES[obj['type']]}"
    for obj in of_type(objects, "search"):
        attrs = obj["attributes"]
        sort = attrs["sort"]
        assert all(isinstance(s, list) and len(s) == 2 and s[1] in {"asc", "desc"} for s in sort), sort
        if attrs.get("timeRestore"):
            assert set(attrs["timeRange"]) == {"from", "to"}
            assert set(attrs.get("refreshInterval", {"pause": 1, "value": 1})) == {"pause", "value"}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def test_migration_versions_are_not_newer_than_the_compose_kibana(objects: list[dict[str, Any]]) -> None:
    """Kibana refuses a document whose typeMigrationVersion is newer than it knows ("belongs to a
    more recent version of Kibana"); older ones are migrated on import."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    kibana = _version(compose["services"]["kibana"]["image"].rsplit(":", 1)[1])
    assert kibana[0] == 8
    for obj in objects:
        for key in ("typeMigrationVersion", "coreMigrationVersion"):
            assert re.fullmatch(r"\d+\.\d+\.\d+", obj[key]), f"{obj['id']}: {key}"
            assert (8, 0, 0) <= _version(obj[key]) <= kibana, f"{obj['id']}: {key} {obj[key]}"


def test_visualizations_are_consistent(objects: list[dict[str, Any]]) -> None:
    for obj in of_type(objects, "visualization"):
        attrs = obj["attributes"]
        state = json.loads(attrs["visState"])
        assert state["title"] == attrs["title"]
        assert state["type"] in VIS_SCHEMAS, f"{obj['id']}: unchecked vis type {state['type']}"
        json.loads(attrs.get("uiStateJSON", "{}"))
        aggs = state["aggs"]
        ids = [a["id"] for a in aggs]
        assert len(ids) == len(set(ids)), obj["id"]
        metrics = {a["id"] for a in aggs if a["schema"] == "metric"}
        assert metrics, f"{obj['id']}: no metric"
        for agg in aggs:
            assert agg["schema"] in VIS_SCHEMAS[state["type"]], f"{obj['id']}: schema {agg['schema']}"
            assert agg.get("enabled", True) is True
            if agg["type"] == "terms":
                assert agg["params"]["orderBy"] in metrics | {"_key"}, f"{obj['id']}: terms order"
                assert agg["params"]["size"] >= 1
        for series in state["params"].get("seriesParams", []):
            assert series["data"]["id"] in metrics, f"{obj['id']}: series of a missing metric"
            axes = {a["id"] for a in state["params"]["valueAxes"]}
            assert series["valueAxis"] in axes


def test_dashboard_panels_resolve_and_fit_the_grid(objects: list[dict[str, Any]]) -> None:
    known = {(o["type"], o["id"]) for o in objects}
    for dashboard in of_type(objects, "dashboard"):
        attrs = dashboard["attributes"]
        panels = json.loads(attrs["panelsJSON"])
        json.loads(attrs["optionsJSON"])
        refs = _refs_by_name(dashboard)
        assert panels
        indexes = [p["panelIndex"] for p in panels]
        assert len(indexes) == len(set(indexes))
        cells: set[tuple[int, int]] = set()
        for panel in panels:
            # Kibana 8 injects references per panel: "<panelIndex>:<panelRefName>".
            ref = refs.get(f"{panel['panelIndex']}:{panel['panelRefName']}")
            assert ref is not None, f"{dashboard['id']}: panel {panel['panelIndex']} has no reference"
            assert (ref["type"], ref["id"]) in known
            assert panel["type"] == ref["type"]
            grid = panel["gridData"]
            assert grid["i"] == panel["panelIndex"]
            assert grid["x"] >= 0 and grid["y"] >= 0 and grid["w"] > 0 and grid["h"] > 0
            assert grid["x"] + grid["w"] <= DASHBOARD_COLUMNS, f"panel {panel['panelIndex']} is too wide"
            xs, ys = range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
            mine = {(x, y) for x in xs for y in ys}
            assert not mine & cells, f"panel {panel['panelIndex']} overlaps another"
            cells |= mine
        panel_refs = {f"{p['panelIndex']}:{p['panelRefName']}" for p in panels}
        assert panel_refs == set(refs), "references that no panel uses"
        if attrs.get("timeRestore"):
            assert attrs["timeFrom"] and attrs["timeTo"]


# --- every field, mapped and usable ----------------------------------------------------------------


def test_mapped_fields_include_subfields_and_object_paths() -> None:
    contradictions = fields_of_index("contradictions")
    assert contradictions["sides"] == "object"
    assert contradictions["sides.value"] == "keyword"
    assert contradictions["sides.reports.attributed_to.keyword"] == "keyword"
    assert fields_of_index("stories")["title.keyword"] == "keyword"
    assert fields_of_index("stories")["title"] == "text"


def test_kql_fields() -> None:
    assert kql_fields('status : ("pending" or "failed")') == ["status"]
    assert kql_fields('kind:numeric and confidence >= 0.5 and not about : "x:y"') == ["kind", "confidence", "about"]
    assert kql_fields("sides.value : 14") == ["sides.value"]
    assert kql_fields("free text") == []


def test_every_field_reference_is_mapped_and_usable(objects: list[dict[str, Any]]) -> None:
    uses = [u for o in objects for u in field_uses(o)]
    # The extractor must actually find each kind of use, or an empty result would pass vacuously.
    purposes = {u.purpose for u in uses}
    assert {"time", "column", "sort", "query", "filter", "terms", "date_histogram", "min_max"} <= purposes
    assert all(u.data_view is not None for u in uses if u.obj.split(":")[0] in {"search", "visualization"})
    assert field_problems(objects) == []


def test_fields_also_resolve_under_another_prefix(objects: list[dict[str, Any]], script: ModuleType) -> None:
    renamed = script.with_prefix(objects, "staging")
    assert field_problems(renamed, prefix="staging") == []


def _agg_types(vis: dict[str, Any]) -> set[str]:
    return {a["type"] for a in json.loads(vis["attributes"]["visState"])["aggs"]}


def _source_json(obj: dict[str, Any]) -> str:
    return str(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def _replace_agg_field(objects: list[dict[str, Any]], vis_id: str, agg_type: str, field: str) -> None:
    vis = next(o for o in objects if o["id"] == vis_id)
    state = json.loads(vis["attributes"]["visState"])
    agg = next(a for a in state["aggs"] if a["type"] == agg_type)
    agg["params"]["field"] = field
    vis["attributes"]["visState"] = json.dumps(state)


def _bad_terms_on_text(objs: list[dict[str, Any]]) -> None:
    vis = next(o for o in of_type(objs, "visualization") if _agg_types(o) & {"terms"})
    view = _source_view(vis)
    index = index_for_title(next(o for o in objs if o["id"] == view)["attributes"]["title"])
    assert index is not None
    text_field = next(f for f, t in fields_of_index(index).items() if t == "text")
    _replace_agg_field(objs, vis["id"], "terms", text_field)


def _bad_date_histogram_on_keyword(objs: list[dict[str, Any]]) -> None:
    vis = next(o for o in of_type(objs, "visualization") if "date_histogram" in _agg_types(o))
    _replace_agg_field(objs, vis["id"], "date_histogram", "id")


def _bad_time_field(objs: list[dict[str, Any]]) -> None:
    view = next(o for o in of_type(objs, "index-pattern") if o["attributes"].get("timeFieldName"))
    view["attributes"]["timeFieldName"] = "id"


def _bad_sort_on_text(objs: list[dict[str, Any]]) -> None:
    search = of_type(objs, "search")[0]
    index = index_for_title(next(o for o in objs if o["id"] == _source_view(search))["attributes"]["title"])
    assert index is not None
    text_field = next(f for f, t in fields_of_index(index).items() if t == "text")
    search["attributes"]["sort"] = [[text_field, "desc"]]


def _bad_unknown_column(objs: list[dict[str, Any]]) -> None:
    of_type(objs, "search")[0]["attributes"]["columns"].append("no_such_field")


def _bad_object_column(objs: list[dict[str, Any]]) -> None:
    search = next(s for s in of_type(objs, "search") if _source_view(s) == "crosswire-contradictions")
    search["attributes"]["columns"].append("sides")


def _bad_query_field(objs: list[dict[str, Any]]) -> None:
    search = of_type(objs, "search")[0]
    meta = search["attributes"]["kibanaSavedObjectMeta"]
    source = json.loads(meta["searchSourceJSON"])
    source["query"]["query"] = 'stauts : "failed"'
    meta["searchSourceJSON"] = json.dumps(source)


def _bad_filter_field(objs: list[dict[str, Any]]) -> None:
    search = next(s for s in of_type(objs, "search") if json.loads(_source_json(s)).get("filter"))
    meta = search["attributes"]["kibanaSavedObjectMeta"]
    source = json.loads(meta["searchSourceJSON"])
    source["filter"][0]["meta"]["key"] = "storey"
    source["filter"][0]["query"] = {"exists": {"field": "storey"}}
    meta["searchSourceJSON"] = json.dumps(source)


def _bad_field_of_another_index(objs: list[dict[str, Any]]) -> None:
    # `side_values` is a keyword in contradictions, but the stories data view has no such field.
    vis = next(
        o for o in of_type(objs, "visualization") if _source_view(o) == "crosswire-stories" and "terms" in _agg_types(o)
    )
    _replace_agg_field(objs, vis["id"], "terms", "side_values")


def _bad_unknown_data_view(objs: list[dict[str, Any]]) -> None:
    search = of_type(objs, "search")[0]
    for ref in search["references"]:
        if ref["name"] == SOURCE_INDEX_REF:
            ref["id"] = "crosswire-nowhere"


@pytest.mark.parametrize(
    ("break_it", "expect"),
    [
        (_bad_terms_on_text, "cannot be used for terms"),
        (_bad_date_histogram_on_keyword, "cannot be used for date_histogram"),
        (_bad_time_field, "cannot be used for time"),
        (_bad_sort_on_text, "cannot be used for sort"),
        (_bad_unknown_column, "'no_such_field' (column): not mapped"),
        (_bad_object_column, "is an object"),
        (_bad_query_field, "'stauts' (query): not mapped"),
        (_bad_filter_field, "'storey' (filter): not mapped"),
        (_bad_field_of_another_index, "'side_values' (terms): not mapped in stories"),
        (_bad_unknown_data_view, "is not defined in deploy/kibana/"),
    ],
)
def test_checker_detects_a_wrong_reference(objects: list[dict[str, Any]], break_it: Any, expect: str) -> None:
    broken = copy.deepcopy(objects)
    break_it(broken)
    problems = field_problems(broken)
    assert any(expect in p for p in problems), problems


def test_checker_accepts_keyword_subfields_and_object_leaves(objects: list[dict[str, Any]]) -> None:
    fine = copy.deepcopy(objects)
    search = next(s for s in of_type(fine, "search") if _source_view(s) == "crosswire-contradictions")
    search["attributes"]["columns"] += ["sides.value", "sides.reports.attributed_to.keyword"]
    search["attributes"]["sort"].append(["sides.lo", "asc"])
    assert field_problems(fine) == []


def _lens(field: str, operation: str) -> dict[str, Any]:
    """A minimal Lens object of one formBased layer on the stories data view."""
    return {
        "type": "lens",
        "id": "crosswire-lens-probe",
        "attributes": {
            "title": "probe",
            "visualizationType": "lnsXY",
            "state": {
                "datasourceStates": {
                    "formBased": {
                        "layers": {
                            "layer1": {
                                "columnOrder": ["a", "b"],
                                "columns": {
                                    "a": {"operationType": operation, "sourceField": field},
                                    "b": {"operationType": "count", "sourceField": LENS_RECORDS},
                                },
                            }
                        }
                    }
                },
                "query": {"query": "", "language": "kuery"},
                "filters": [],
            },
        },
        "references": [
            {"name": "indexpattern-datasource-layer-layer1", "type": "index-pattern", "id": "crosswire-stories"}
        ],
    }


@pytest.mark.parametrize(
    ("field", "operation", "ok"),
    [
        ("title.keyword", "terms", True),
        ("title", "terms", False),
        ("first_seen", "date_histogram", True),
        ("outlet_count", "max", True),
        ("outlets", "unique_count", True),
        ("outlets", "average", False),
    ],
)
def test_checker_reads_lens_columns(objects: list[dict[str, Any]], field: str, operation: str, ok: bool) -> None:
    problems = field_problems([*copy.deepcopy(objects), _lens(field, operation)])
    assert (problems == []) is ok, problems


# --- the import script ---------------------------------------------------------------------------


def test_script_reads_the_shipped_file(script: ModuleType, objects: list[dict[str, Any]]) -> None:
    assert script.DEFAULT_FILE == NDJSON_FILES[0] and len(NDJSON_FILES) == 1
    assert script.read_objects(NDJSON_FILES[0].read_text(encoding="utf-8")) == objects
    assert script.SHIPPED_PREFIX == DEFAULT_PREFIX == Settings.model_fields["es_index_prefix"].default


def test_read_objects_names_the_bad_line(script: ModuleType) -> None:
    with pytest.raises(ValueError, match="line 2"):
        script.read_objects('{"type": "x", "id": "a"}\n{not json\n')
    with pytest.raises(ValueError, match="line 1: not a saved object"):
        script.read_objects('{"id": "a"}\n')
    assert script.read_objects('\n{"type": "x", "id": "a"}\n\n') == [{"type": "x", "id": "a"}]


def test_with_prefix_changes_data_view_titles_only(script: ModuleType, objects: list[dict[str, Any]]) -> None:
    before = copy.deepcopy(objects)
    renamed = script.with_prefix(objects, "staging")
    assert objects == before, "the input must not be modified"
    assert [o["id"] for o in renamed] == [o["id"] for o in objects]
    for old, new in zip(objects, renamed, strict=True):
        if old["type"] == "index-pattern":
            assert new["attributes"]["title"] == "staging-" + old["attributes"]["title"].removeprefix("crosswire-")
            assert {k: v for k, v in new["attributes"].items() if k != "title"} == {
                k: v for k, v in old["attributes"].items() if k != "title"
            }
            assert new["references"] == old["references"]
        else:
            assert new == old


@given(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,30}", fullmatch=True))
def test_with_prefix_round_trips(prefix: str) -> None:
    script = import_script()
    shipped = load_objects()
    renamed = script.with_prefix(shipped, prefix)
    titles = {o["attributes"]["title"] for o in renamed if o["type"] == "index-pattern"}
    assert titles == {f"{prefix}-{name}*" for name in INDEX_NAMES}
    # Every title is exactly the pattern the templates get with this prefix.
    for title in titles:
        assert index_for_title(title, prefix) is not None
    # Converting back restores the shipped objects.
    back = [
        {**o, "attributes": {**o["attributes"], "title": "crosswire-" + o["attributes"]["title"][len(prefix) + 1 :]}}
        if o["type"] == "index-pattern"
        else o
        for o in renamed
    ]
    assert back == shipped


@pytest.mark.parametrize("bad", ["", "Crosswire", "-x", "_x", ".x", "a b", "a*", "a,b", "a/b", "a:b", "x" * 201])
def test_check_prefix_rejects_invalid_index_names(script: ModuleType, bad: str) -> None:
    with pytest.raises(ValueError, match="index prefix"):
        script.check_prefix(bad)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_multipart_body_carries_the_payload_unchanged(content: str) -> None:
    script = import_script()
    payload = content.encode("utf-8")
    body, content_type = script.multipart(payload, filename="crosswire.ndjson")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert message.is_multipart()
    parts = list(message.iter_parts())
    assert len(parts) == 1
    part = parts[0]
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename() == "crosswire.ndjson"
    assert part.get_content_type() == "application/ndjson"
    assert part.get_payload(decode=True) == payload


def test_failures_describe_each_rejected_object(script: ModuleType) -> None:
    result = {
        "success": False,
        "successCount": 1,
        "errors": [
            {
                "id": "crosswire-overview",
                "type": "dashboard",
                "meta": {"title": "Crosswire: overview"},
                "error": {"type": "missing_references", "references": [{"type": "visualization", "id": "gone"}]},
            },
            {"id": "x", "type": "search", "error": {"type": "unknown", "message": "bad attribute"}},
        ],
    }
    lines = script.failures(result)
    assert len(lines) == 2
    assert "crosswire-overview" in lines[0] and "missing_references" in lines[0] and "'gone'" in lines[0]
    assert "bad attribute" in lines[1]
    assert script.failures({"success": True, "successCount": 3}) == []
    assert script.failures({"success": False}) != []


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _status(level: str) -> bytes:
    return json.dumps({"status": {"overall": {"level": level}}}).encode()


def test_wait_until_available_polls_until_kibana_is_up(script: ModuleType) -> None:
    answers = [ConnectionRefusedError("refused"), script.Response(503, _status("unavailable")),
               script.Response(200, b"<html>starting</html>"), script.Response(200, _status("degraded"))]
    seen: list[str] = []

    def transport(request: Any, timeout: float) -> Any:
        seen.append(request.full_url)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    fake = FakeClock()
    cfg = script.Config(url="http://kibana:5601/", timeout_s=60, poll_s=2)
    script.wait_until_available(cfg, transport, clock=fake.clock, sleep=fake.sleep)
    assert answers == [] and fake.sleeps == [2, 2, 2]
    assert seen == ["http://kibana:5601/api/status"] * 4


def test_wait_until_available_times_out_with_the_last_answer(script: ModuleType) -> None:
    fake = FakeClock()
    cfg = script.Config(timeout_s=10, poll_s=3)
    with pytest.raises(script.SetupError, match=r"not available within 10 s \(HTTP 503, status unavailable\)"):
        script.wait_until_available(
            cfg, lambda r, t: script.Response(503, _status("unavailable")), clock=fake.clock, sleep=fake.sleep
        )
    assert sum(fake.sleeps) == pytest.approx(10)


def test_messages_never_show_user_info_or_paths(script: ModuleType) -> None:
    assert script.redact("https://admin:secret@kibana.example.org:5601/base?x=1") == "https://kibana.example.org:5601"
    fake = FakeClock()
    cfg = script.Config(url="http://admin:secret@127.0.0.1:9", timeout_s=0)
    with pytest.raises(script.SetupError) as raised:
        script.wait_until_available(cfg, lambda r, t: script.Response(503, b""), clock=fake.clock, sleep=fake.sleep)
    assert "secret" not in str(raised.value) and "127.0.0.1:9" in str(raised.value)


def test_wait_until_available_stops_at_once_on_bad_credentials(script: ModuleType) -> None:
    fake = FakeClock()
    with pytest.raises(script.SetupError, match="401.*KIBANA_API_KEY"):
        script.wait_until_available(
            script.Config(), lambda r, t: script.Response(401, b"{}"), clock=fake.clock, sleep=fake.sleep
        )
    assert fake.sleeps == []


# --- against a fake Kibana on loopback ------------------------------------------------------------


@dataclass
class FakeKibana:
    url: str
    requests: list[dict[str, Any]]
    status_answers: list[tuple[int, bytes]]
    import_answer: tuple[int, bytes]


@pytest.fixture()
def fake_kibana() -> Iterator[FakeKibana]:
    state = FakeKibana(url="", requests=[], status_answers=[], import_answer=(200, b""))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            state.requests.append({"method": "GET", "path": self.path, "headers": self.headers})
            if self.path.endswith("/api/status"):
                answer = state.status_answers.pop(0) if state.status_answers else (200, _status("available"))
                self._answer(*answer)
            else:
                self._answer(404, b"{}")

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append({"method": "POST", "path": self.path, "headers": self.headers, "body": body})
            self._answer(*state.import_answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _uploaded_objects(request: dict[str, Any]) -> list[dict[str, Any]]:
    content_type = request["headers"]["Content-Type"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request["body"]
    )
    (part,) = list(message.iter_parts())
    return [json.loads(line) for line in part.get_payload(decode=True).decode().splitlines()]


def test_import_against_a_fake_kibana(
    script: ModuleType, fake_kibana: FakeKibana, objects: list[dict[str, Any]]
) -> None:
    fake_kibana.status_answers = [(503, _status("unavailable"))]
    fake_kibana.import_answer = (200, json.dumps({"success": True, "successCount": len(objects)}).encode())
    cfg = script.config_from(
        ["--timeout", "10"],
        {"KIBANA_URL": fake_kibana.url, "KIBANA_SPACE": "ops", "KIBANA_USERNAME": "elastic",
         "KIBANA_PASSWORD": "pw", "CROSSWIRE_ES_INDEX_PREFIX": "staging"},
    )
    cfg = script.Config(**{**cfg.__dict__, "poll_s": 0.01})
    out, err = io.StringIO(), io.StringIO()
    assert script.run(cfg, script.urllib_transport(cfg), out=out, err=err) == 0, err.getvalue()
    assert f"imported {len(objects)} saved objects" in out.getvalue()

    gets = [r for r in fake_kibana.requests if r["method"] == "GET"]
    posts = [r for r in fake_kibana.requests if r["method"] == "POST"]
    assert [g["path"] for g in gets] == ["/s/ops/api/status"] * 2
    assert len(posts) == 1
    post = posts[0]
    assert post["path"] == "/s/ops/api/saved_objects/_import?overwrite=true"
    assert post["headers"]["kbn-xsrf"] == "true"
    assert post["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert post["headers"]["Authorization"] == "Basic ZWxhc3RpYzpwdw=="  # elastic:pw
    uploaded = _uploaded_objects(post)
    assert [o["id"] for o in uploaded] == [o["id"] for o in objects]
    titles = {o["attributes"]["title"] for o in uploaded if o["type"] == "index-pattern"}
    assert titles == {f"staging-{name}*" for name in INDEX_NAMES}


def test_import_reports_rejected_objects(script: ModuleType, fake_kibana: FakeKibana) -> None:
    fake_kibana.import_answer = (200, json.dumps({
        "success": False, "successCount": 11,
        "errors": [{"id": "crosswire-overview", "type": "dashboard", "error": {"type": "unknown", "message": "boom"}}],
    }).encode())
    cfg = script.Config(url=fake_kibana.url, api_key="abc", timeout_s=5, poll_s=0.01)
    err = io.StringIO()
    assert script.run(cfg, script.urllib_transport(cfg), out=io.StringIO(), err=err) == 1
    assert "crosswire-overview" in err.getvalue() and "boom" in err.getvalue()
    post = next(r for r in fake_kibana.requests if r["method"] == "POST")
    assert post["headers"]["Authorization"] == "ApiKey abc"


def test_import_http_error_is_a_setup_error(script: ModuleType, fake_kibana: FakeKibana) -> None:
    fake_kibana.import_answer = (500, b'{"message": "internal"}')
    cfg = script.Config(url=fake_kibana.url, timeout_s=5, poll_s=0.01)
    err = io.StringIO()
    assert script.run(cfg, script.urllib_transport(cfg), out=io.StringIO(), err=err) == 2
    assert "HTTP 500" in err.getvalue() and "internal" in err.getvalue()


def test_unreachable_kibana_times_out(script: ModuleType) -> None:
    # Port 9 on loopback: nothing listens, so each attempt is refused at once.
    cfg = script.Config(url="http://127.0.0.1:9", timeout_s=0.2, poll_s=0.05, request_timeout_s=1)
    err = io.StringIO()
    assert script.run(cfg, script.urllib_transport(cfg), out=io.StringIO(), err=err) == 2
    assert "was not available within" in err.getvalue() and "cannot connect" in err.getvalue()


def test_dry_run_prints_the_converted_file(script: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert script.main(["--dry-run"], {"CROSSWIRE_ES_INDEX_PREFIX": "prod-eu"}) == 0
    printed = script.read_objects(capsys.readouterr().out)
    assert {o["attributes"]["title"] for o in printed if o["type"] == "index-pattern"} == {
        f"prod-eu-{name}*" for name in INDEX_NAMES
    }


@pytest.mark.parametrize(
    ("argv", "env"),
    [([], {"CROSSWIRE_ES_INDEX_PREFIX": "Bad Prefix"}), (["--space", "My Space"], {}), (["--timeout", "-1"], {})],
)
def test_bad_settings_exit_2(script: ModuleType, argv: list[str], env: dict[str, str],
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert script.main(argv, env) == 2
    assert "error:" in capsys.readouterr().err


# --- docker compose ------------------------------------------------------------------------------


def test_compose_runs_the_import_once_kibana_is_healthy() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    services = compose["services"]
    setup = services["kibana-setup"]
    assert setup["depends_on"]["kibana"]["condition"] == "service_healthy"
    assert str(setup["restart"]) == "no"
    assert "/api/status" in " ".join(services["kibana"]["healthcheck"]["test"])

    # The script and the NDJSON are mounted from deploy/kibana/, and the command runs that script.
    mounts = [str(v).split(":") for v in setup["volumes"]]
    (source, target, *mode) = next(m for m in mounts if (REPO / m[0]).resolve() == KIBANA_DIR.resolve())
    assert mode == ["ro"]
    command = setup["command"]
    assert command[0].startswith("python") and command[1] == f"{target}/{SCRIPT.name}"
    assert setup["image"].startswith("python:3.")

    env = setup["environment"]
    url = env["KIBANA_URL"]
    match = re.fullmatch(r"http://(?P<host>[\w-]+):(?P<port>\d+)", url)
    assert match and match["host"] in services
    kibana_ports = {str(p).rsplit(":", 1)[-1] for p in services["kibana"].get("ports", [])}
    assert match["port"] in kibana_ports
    # The same prefix expression, and default, as the workers get.
    assert env["CROSSWIRE_ES_INDEX_PREFIX"] == compose["x-crosswire-env"]["CROSSWIRE_ES_INDEX_PREFIX"]
    assert env["CROSSWIRE_ES_INDEX_PREFIX"].endswith(f":-{Settings.model_fields['es_index_prefix'].default}}}")
