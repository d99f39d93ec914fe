"""A static model of the Azure Pipelines files in .azure-pipelines/, for the pipeline tests.

Nothing here talks to Azure DevOps. The files are parsed with PyYAML's SafeLoader (a subclass
that remembers line numbers), the few template expressions the pipelines use are expanded from
parameter defaults (``${{ each x in parameters.y }}``, ``${{ x.field }}``; ``${{ if }}`` blocks
are kept, every branch), and the bash in ``script``/``bash``/``inlineScript`` and in template
parameters named ``script`` is scanned for ``invoke`` command lines.

Every object found carries its file and line so a failing test can say where to look.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
PIPELINES_DIR = REPO / ".azure-pipelines"
TEMPLATES_DIR = PIPELINES_DIR / "templates"
LINT_CONFIG = PIPELINES_DIR / ".yamllint.yml"


# --------------------------------------------------------------------------- loading


class LineStr(str):
    """A YAML string that knows the line it starts on (1-based) and where its text begins."""

    line: int = 0
    first_text_line: int = 0


class LineDict(dict):
    line: int = 0


class LineList(list):
    line: int = 0


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records line numbers on strings, mappings and sequences."""


def _construct_str(loader: _LineLoader, node: yaml.ScalarNode) -> LineStr:
    value = LineStr(loader.construct_scalar(node))
    value.line = node.start_mark.line + 1
    # In a block scalar (| or >) the text starts on the line after the indicator.
    value.first_text_line = value.line + 1 if node.style in ("|", ">") else value.line
    return value


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[LineDict]:
    data = LineDict()
    data.line = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node, deep=True))


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[LineList]:
    data = LineList()
    data.line = node.start_mark.line + 1
    yield data
    data.extend(loader.construct_sequence(node, deep=True))


_LineLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def line_of(obj: Any, default: int = 0) -> int:
    return getattr(obj, "line", default) or default


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def yaml_files() -> list[Path]:
    """Every YAML file under .azure-pipelines/ except the yamllint configuration."""
    files = sorted(PIPELINES_DIR.rglob("*.yml")) + sorted(PIPELINES_DIR.rglob("*.yaml"))
    return [f for f in files if f != LINT_CONFIG]


def pipeline_files() -> list[Path]:
    """The pipelines a team imports: YAML files directly in .azure-pipelines/."""
    return [f for f in yaml_files() if f.parent == PIPELINES_DIR]


def template_files() -> list[Path]:
    return [f for f in yaml_files() if TEMPLATES_DIR in f.parents]


def load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass


# --------------------------------------------------------------------------- template expressions

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
EACH = re.compile(r"^\$\{\{\s*each\s+(\w+)\s+in\s+parameters\.(\w+)\s*\}\}$")
CONDITIONAL = re.compile(r"^\$\{\{\s*(if|elseif|else)\b.*\}\}$")


def parameter_defaults(document: Any) -> dict[str, Any]:
    params = document.get("parameters") if isinstance(document, dict) else None
    if not isinstance(params, list):
        return {}
    return {p["name"]: p.get("default") for p in params if isinstance(p, dict) and "name" in p}


def _resolve(expression: str, scope: dict[str, Any]) -> tuple[bool, Any]:
    """Resolve ``name`` or ``name.field`` against the loop variables in ``scope``."""
    parts = expression.split(".")
    if parts[0] not in scope:
        return False, None
    value = scope[parts[0]]
    for part in parts[1:]:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _substitute(text: str, scope: dict[str, Any]) -> Any:
    if not scope or "${{" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        found, value = _resolve(match.group(1), scope)
        return str(value) if found else match.group(0)

    result = LineStr(EXPR.sub(replace, text))
    result.line = line_of(text)
    result.first_text_line = getattr(text, "first_text_line", result.line)
    return result


def expand(node: Any, params: dict[str, Any], scope: dict[str, Any] | None = None) -> Any:
    """Expand ``each`` loops over parameter defaults and flatten ``if`` blocks (all branches)."""
    scope = scope or {}
    if isinstance(node, dict):
        out = LineDict()
        out.line = line_of(node)
        for key, value in node.items():
            each = EACH.match(key) if isinstance(key, str) else None
            if each:
                for item in params.get(each.group(2)) or []:
                    expanded = expand(value, params, {**scope, each.group(1): item})
                    if isinstance(expanded, dict):
                        out.update(expanded)
                continue
            if isinstance(key, str) and CONDITIONAL.match(key):
                expanded = expand(value, params, scope)
                if isinstance(expanded, dict):
                    out.update(expanded)
                continue
            new_key = _substitute(key, scope) if isinstance(key, str) else key
            out[new_key] = expand(value, params, scope)
        return out
    if isinstance(node, list):
        out_list = LineList()
        out_list.line = line_of(node)
        for item in node:
            if isinstance(item, dict) and len(item) == 1:
                ((key, value),) = item.items()
                each = EACH.match(key) if isinstance(key, str) else None
                if each:
                    for loop_item in params.get(each.group(2)) or []:
                        expanded = expand(value, params, {**scope, each.group(1): loop_item})
                        out_list.extend(expanded if isinstance(expanded, list) else [expanded])
                    continue
                if isinstance(key, str) and CONDITIONAL.match(key):
                    expanded = expand(value, params, scope)
                    out_list.extend(expanded if isinstance(expanded, list) else [expanded])
                    continue
            out_list.append(expand(item, params, scope))
        return out_list
    if isinstance(node, str):
        return _substitute(node, scope)
    return node


# --------------------------------------------------------------------------- structure


@dataclass
class Step:
    """One step of a job (or of a steps template), with where it is."""

    file: Path
    where: str  # "stage Validate / job Validate" or "steps template"
    data: dict[str, Any]
    job: Job | None = None

    @property
    def line(self) -> int:
        return line_of(self.data)

    @property
    def label(self) -> str:
        for key in ("displayName", "name", "task", "template", "script", "bash"):
            value = self.data.get(key)
            if isinstance(value, str):
                first = value.strip().splitlines()[0] if value.strip() else value
                return f"{key} {first!r}"
        return "step"

    def location(self, line: int | None = None) -> str:
        return f"{rel(self.file)}:{line or self.line} ({self.where} / step {self.label})"


@dataclass
class Job:
    file: Path
    stage: str
    name: str
    data: dict[str, Any]
    steps: list[Step] = field(default_factory=list)

    @property
    def is_deployment(self) -> bool:
        return "deployment" in self.data

    @property
    def environment(self) -> Any:
        env = self.data.get("environment")
        return env.get("name") if isinstance(env, dict) else env

    @property
    def matrix_legs(self) -> dict[str, Any]:
        strategy = self.data.get("strategy") or {}
        matrix = strategy.get("matrix") if isinstance(strategy, dict) else None
        return dict(matrix) if isinstance(matrix, dict) else {}


@dataclass
class Stage:
    file: Path
    name: str
    data: dict[str, Any]
    jobs: list[Job] = field(default_factory=list)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _job_steps(job_data: dict[str, Any]) -> list[Any]:
    steps = list(job_data.get("steps") or [])
    strategy = job_data.get("strategy") or {}
    if isinstance(strategy, dict):
        for strategy_name in ("runOnce", "rolling", "canary"):
            hooks = strategy.get(strategy_name) or {}
            for hook in ("preDeploy", "deploy", "routeTraffic", "postRouteTraffic"):
                hook_data = hooks.get(hook) or {}
                steps.extend(hook_data.get("steps") or [])
            on = hooks.get("on") or {}
            for outcome in ("failure", "success"):
                steps.extend((on.get(outcome) or {}).get("steps") or [])
    return steps


@dataclass
class PipelineFile:
    path: Path
    raw: Any
    doc: Any  # expanded
    stages: list[Stage] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)  # every step, stages or a steps template

    @property
    def name(self) -> str:
        return rel(self.path)

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def parse(path: Path) -> PipelineFile:
    raw = load(path)
    doc = expand(raw, parameter_defaults(raw))
    pipeline = PipelineFile(path=path, raw=raw, doc=doc)
    if not isinstance(doc, dict):
        return pipeline
    stage_items = doc.get("stages")
    if stage_items is None and ("jobs" in doc or "steps" in doc) and "parameters" not in doc:
        # A single-stage pipeline written without `stages:`.
        stage_items = [
            {"stage": "__default", "jobs": doc.get("jobs") or [{"job": "__default", **doc}]}
        ]
    for stage_data in stage_items or []:
        if not isinstance(stage_data, dict) or "stage" not in stage_data:
            continue
        stage = Stage(path, str(stage_data["stage"]), stage_data)
        pipeline.stages.append(stage)
        for job_data in stage_data.get("jobs") or []:
            if not isinstance(job_data, dict):
                continue
            name = job_data.get("job") or job_data.get("deployment")
            if name is None:
                continue
            job = Job(path, stage.name, str(name), job_data)
            stage.jobs.append(job)
            where = f"stage {stage.name} / job {job.name}"
            for step_data in _job_steps(job_data):
                if isinstance(step_data, dict):
                    step = Step(path, where, step_data, job)
                    job.steps.append(step)
                    pipeline.steps.append(step)
    if "steps" in doc and not pipeline.stages:
        for step_data in doc.get("steps") or []:
            if isinstance(step_data, dict):
                pipeline.steps.append(Step(path, "steps template", step_data))
    return pipeline


def all_parsed() -> list[PipelineFile]:
    return [parse(path) for path in yaml_files()]


def walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Yield (key path, value) for every node below ``node``, keys of mappings included."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


# --------------------------------------------------------------------------- scripts

SCRIPT_KEYS = ("script", "bash", "pwsh", "powershell")


@dataclass
class Script:
    step: Step
    text: LineStr | str
    via_template: str | None  # the template the script is a parameter of, if any

    def line_at(self, index: int) -> int:
        first = getattr(self.text, "first_text_line", 0) or self.step.line
        return first + index


def scripts_of(step: Step) -> Iterator[Script]:
    data = step.data
    for key in SCRIPT_KEYS:
        if isinstance(data.get(key), str):
            yield Script(step, data[key], None)
    inputs = data.get("inputs")
    if isinstance(inputs, dict):
        for key in ("inlineScript", "script"):
            if isinstance(inputs.get(key), str):
                yield Script(step, inputs[key], None)
    if isinstance(data.get("template"), str):
        params = data.get("parameters")
        if isinstance(params, dict):
            for key, value in params.items():
                if isinstance(value, str) and str(key).lower().endswith("script"):
                    yield Script(step, value, str(data["template"]))


@dataclass
class InvokeCall:
    """One `invoke ...` command line found in a script."""

    script: Script
    line: int
    argv: list[str]  # after `invoke`; bash array expansions spliced in
    command: str  # the logical line as written

    @property
    def location(self) -> str:
        return self.script.step.location(self.line)


_ARRAY_ASSIGN = re.compile(r"^\s*(\w+)\+?=\((.*)\)\s*(?:#.*)?$")
_ARRAY_EXPANSION = re.compile(r"^\$\{(\w+)\[@\]\}$")
_COMMAND_PREFIXES = {
    "if",
    "then",
    "else",
    "elif",
    "do",
    "while",
    "until",
    "!",
    "time",
    "exec",
    "{",
    "sudo",
    "env",
}


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(index of first physical line, line) with backslash continuations joined."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        start, current = index, lines[index]
        while current.endswith("\\") and index + 1 < len(lines):
            index += 1
            current = current[:-1] + " " + lines[index].strip()
        yield start, current
        index += 1


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: not a line we can judge
        return []


def invoke_calls(script: Script) -> Iterator[InvokeCall]:
    text = str(script.text)
    arrays: dict[str, list[str]] = {}
    for _, line in logical_lines(text):
        match = _ARRAY_ASSIGN.match(line)
        if match:
            arrays.setdefault(match.group(1), []).extend(_tokens(match.group(2)))
    for index, line in logical_lines(text):
        tokens = _tokens(line)
        at_command_start = True
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if set(token) <= set(";&|"):
                at_command_start = True
            elif at_command_start and (token in _COMMAND_PREFIXES or re.match(r"^\w+=", token)):
                pass
            elif at_command_start and token == "invoke":
                argv: list[str] = []
                position += 1
                while position < len(tokens) and not set(tokens[position]) <= set(";&|"):
                    expansion = _ARRAY_EXPANSION.match(tokens[position])
                    if expansion:
                        argv.extend(arrays.get(expansion.group(1), [tokens[position]]))
                    else:
                        argv.append(tokens[position])
                    position += 1
                yield InvokeCall(script, script.line_at(index), argv, line.strip())
                at_command_start = True
                continue
            else:
                at_command_start = False
            position += 1


def all_steps() -> Iterator[Step]:
    for parsed in all_parsed():
        yield from parsed.steps


def all_scripts() -> Iterator[Script]:
    for step in all_steps():
        yield from scripts_of(step)


def all_invoke_calls() -> list[InvokeCall]:
    return [call for script in all_scripts() for call in invoke_calls(script)]


def split_tasks(
    argv: list[str], takes_value: dict[str, dict[str, bool]]
) -> list[tuple[str, list[str]]]:
    """Split an invoke argv into (task, its arguments); ``takes_value[task][flag]``.

    A word after a task's flags starts the next task unless it is the value of the flag before
    it. Unknown tasks and flags are returned as written so the caller can report them.
    """
    result: list[tuple[str, list[str]]] = []
    position = 0
    while position < len(argv):
        task = argv[position]
        position += 1
        args: list[str] = []
        flags = takes_value.get(task, {})
        while position < len(argv) and argv[position].startswith("-"):
            flag, _, inline_value = argv[position].partition("=")
            args.append(flag)
            position += 1
            if flags.get(flag, True) and not inline_value and position < len(argv):
                # Unknown flags are assumed to take a value, like most imageforge flags do.
                if not argv[position].startswith("-"):
                    args.append(argv[position])
                    position += 1
        result.append((task, args))
    return result


# --------------------------------------------------------------------------- templates


def template_references() -> Iterator[tuple[Path, int, str, dict[str, Any]]]:
    """(referencing file, line, template path as written, parameters passed)."""
    for path in yaml_files():
        raw = load(path)
        for key_path, value in walk(raw):
            if key_path and key_path[-1] == "template" and isinstance(value, str):
                parent: Any = raw
                for key in key_path[:-1]:
                    parent = parent[key]
                params = parent.get("parameters") if isinstance(parent, dict) else None
                yield path, line_of(value), value, params if isinstance(params, dict) else {}


def resolve_template(referencing: Path, written: str) -> Path:
    return (referencing.parent / written).resolve()


def declared_parameters(template: Path) -> dict[str, dict[str, Any]]:
    raw = load(template)
    params = raw.get("parameters") if isinstance(raw, dict) else None
    if isinstance(params, list):
        return {p["name"]: p for p in params if isinstance(p, dict) and "name" in p}
    if isinstance(params, dict):  # the old `parameters: {name: default}` form
        return {name: {"name": name, "default": default} for name, default in params.items()}
    return {}


# --------------------------------------------------------------------------- the contract


def architecture_text() -> str:
    return (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def contract_tasks() -> dict[str, set[str]]:
    """Task name -> flags, from ARCHITECTURE.md "## Tasks (tasks.py)"."""
    tasks: dict[str, set[str]] = {}
    for line in _section(architecture_text(), "Tasks (tasks.py)").splitlines():
        if not line.startswith("    ") or not line.strip():
            continue
        body = line.strip()
        if "|" in body and "--" not in body:  # sandbox.up | sandbox.down | ...
            for name in body.split("|"):
                tasks[name.strip()] = set()
            continue
        name = body.split()[0]
        tasks[name] = set(re.findall(r"--[a-z][a-z-]*", body))
    return tasks


def contract_files() -> list[str]:
    """Path patterns from ARCHITECTURE.md "## Files the tasks write"."""
    patterns = []
    for line in _section(architecture_text(), "Files the tasks write").splitlines():
        if line.startswith("    ") and line.strip():
            patterns.append(line.split()[0])
    return patterns


SAMPLE = {"image": "debian-12", "version": "1.4.0", "name": "debian-12"}


def instantiate(pattern: str) -> str:
    """A concrete path from a contract pattern: <image> -> debian-12, * -> main."""
    path = re.sub(r"<(\w+)>", lambda m: SAMPLE.get(m.group(1), m.group(1)), pattern)
    return path.replace("*", "main")


_PLACEHOLDER = re.compile(r"\$\(\w+\)|\$\{\{[^}]*\}\}|\$\{?\w+\}?")


def glob_regex(glob: str) -> re.Pattern[str]:
    """A pipeline glob (minimatch-like) as a regex; $(var), ${{ }} and $VAR match one segment."""
    out = ""
    position = 0
    while position < len(glob):
        placeholder = _PLACEHOLDER.match(glob, position)
        if placeholder:
            out += r"[^/]+"
            position = placeholder.end()
        elif glob.startswith("**/", position):
            out += r"(?:[^/]+/)*"
            position += 3
        elif glob.startswith("**", position):
            out += r".*"
            position += 2
        elif glob[position] == "*":
            out += r"[^/]*"
            position += 1
        elif glob[position] == "?":
            out += r"[^/]"
            position += 1
        else:
            out += re.escape(glob[position])
            position += 1
    return re.compile(rf"^{out}$")
