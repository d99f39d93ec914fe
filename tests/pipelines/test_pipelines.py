"""Static checks of the Azure Pipelines in .azure-pipelines/.

Azure DevOps only finds most mistakes in a pipeline when it runs it: a renamed invoke flag fails
an hour into a build, a misspelt output variable silently reads as empty and skips a stage, a
missing template fails at queue time. These tests find them on every commit, offline, and name
the file, line and step at fault.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pipeline_model import (
    PIPELINES_DIR,
    REPO,
    TEMPLATES_DIR,
    InvokeCall,
    Job,
    LineStr,
    PipelineFile,
    Step,
    all_invoke_calls,
    all_parsed,
    all_scripts,
    as_list,
    contract_files,
    contract_tasks,
    declared_parameters,
    glob_regex,
    instantiate,
    line_of,
    load,
    parse,
    pipeline_files,
    rel,
    resolve_template,
    split_tasks,
    template_references,
    walk,
    yaml_files,
)

PIPELINE_NAMES = {"image-build.yml", "image-promote.yml", "image-rollback.yml", "maintenance.yml"}
AZURE_CLI_TEMPLATE = TEMPLATES_DIR / "steps" / "azure-cli.yml"
# Tasks that talk to Azure: they must run inside the AzureCLI@2 wrapper, which signs in.
AZURE_TASKS = {
    "build",
    "test-image",
    "versions",
    "replicate",
    "promote",
    "rollback",
    "deprecate",
    "prune",
    "cleanup",
}
# Files the pipelines publish that no invoke task writes: pytest's own JUnit in Validate, and the
# version `invoke build` records for the Replicate stage (build/<image>/version.txt).
PIPELINE_OWN_FILES = ["reports/unit/junit.xml", "build/<image>/version.txt"]


def _report(problems: list[str]) -> str:
    """One line per problem; steps expanded from an `each` loop report the same line once."""
    return "\n".join(dict.fromkeys(problems))


def _parsed() -> list[PipelineFile]:
    return all_parsed()


def _pipeline(name: str) -> PipelineFile:
    return parse(PIPELINES_DIR / name)


# --------------------------------------------------------------------------- parsing and lint


def test_the_pipelines_are_all_there() -> None:
    found = {path.name for path in pipeline_files()}
    assert PIPELINE_NAMES <= found, f"missing pipelines: {sorted(PIPELINE_NAMES - found)}"


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: rel(p))
def test_file_is_a_yaml_mapping(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{rel(path)}: top level is not a mapping"


def test_yamllint_clean() -> None:
    pytest.importorskip("yamllint", reason="yamllint is in the [test] extra")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "yamllint",
            "--strict",
            "-f",
            "parsable",
            "-c",
            str(PIPELINES_DIR / ".yamllint.yml"),
            str(PIPELINES_DIR),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, "yamllint:\n" + (result.stdout + result.stderr).replace(
        str(REPO) + "/", ""
    )


# --------------------------------------------------------------------------- invoke tasks and flags


def _calls() -> list[InvokeCall]:
    calls = all_invoke_calls()
    assert calls, "no `invoke` command found in any pipeline script: is the scanner broken?"
    return calls


SHELL_VALUE = re.compile(r"^\$(\w+|\{\w+\})$")


def _core_flags() -> dict[str, bool]:
    from invoke import Program

    flags: dict[str, bool] = {}
    for argument in Program().core_args():
        for name in argument.names:
            flags[("--" if len(name) > 1 else "-") + name] = argument.takes_value
    return flags


def _strip_core_flags(call: InvokeCall, core: dict[str, bool], problems: list[str]) -> list[str]:
    argv = list(call.argv)
    while argv and argv[0].startswith("-"):
        flag = argv.pop(0).partition("=")[0]
        if flag not in core:
            problems.append(
                f"{call.location}: `invoke {' '.join(call.argv)}`: invoke has no core option {flag}"
            )
        elif core[flag] and argv and "=" not in flag:
            argv.pop(0)
    return argv


@pytest.fixture(scope="module")
def invoke_contexts() -> dict[str, Any] | None:
    """The parser contexts of the real tasks.py collection, by task name and alias."""
    from invoke import Collection

    tasks_py = REPO / "tasks.py"
    if not tasks_py.exists():
        return None
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    spec = importlib.util.spec_from_file_location("_tasks_under_pipeline_test", tasks_py)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    collection = Collection.from_module(module)
    contexts: dict[str, Any] = {}
    for context in collection.to_contexts(ignore_unknown_help=True):
        contexts[context.name] = context
        for alias in context.aliases:
            contexts[alias] = context
    return contexts


def test_invoke_tasks_and_flags_exist_in_tasks_py(invoke_contexts: dict[str, Any] | None) -> None:
    from invoke.parser import ParseError, Parser

    if invoke_contexts is None:
        core = _core_flags()
        used = sorted(
            {
                f"{t} {' '.join(sorted({a for a in args if a.startswith('-')}))}".strip()
                for c in all_invoke_calls()
                for t, args in split_tasks(_strip_core_flags(c, core, []), {})
            }
        )
        pytest.fail(
            f"{REPO / 'tasks.py'} does not exist, so the invoke calls in the pipelines cannot be "
            "checked. They call:\n  " + "\n  ".join(used)
        )
    core = _core_flags()
    takes_value = {
        name: {flag: context.flags[flag].takes_value for flag in context.flags}
        for name, context in invoke_contexts.items()
    }
    parser = Parser(contexts=list({id(c): c for c in invoke_contexts.values()}.values()))
    problems: list[str] = []
    for call in _calls():
        argv = _strip_core_flags(call, core, problems)
        shown = f"{call.location}: `invoke {' '.join(call.argv)}`"
        reported = len(problems)
        for task, args in split_tasks(argv, takes_value):
            context = invoke_contexts.get(task)
            if context is None:
                problems.append(
                    f"{shown}: tasks.py has no task {task!r} "
                    f"(tasks: {', '.join(sorted(invoke_contexts))})"
                )
                continue
            known = set(context.flags) | set(context.inverse_flags)
            for flag in (a for a in args if a.startswith("-")):
                if flag not in known:
                    problems.append(
                        f"{shown}: task {task!r} has no flag {flag} "
                        f"(its flags: {', '.join(sorted(context.flags)) or 'none'})"
                    )
        if len(problems) == reported and argv:
            try:  # what `invoke` itself would say, for anything the checks above let through
                # Shell variables stand for values known only at run time; "1" casts to the
                # str and int flags imageforge has.
                parser.parse_argv([re.sub(SHELL_VALUE, "1", a) for a in argv])
            except (ParseError, ValueError) as error:
                problems.append(f"{shown}: invoke would refuse it: {error}")
    assert not problems, _report(problems)


def test_invoke_calls_follow_the_architecture_contract() -> None:
    """Independent of tasks.py: the calls match docs/ARCHITECTURE.md's task list."""
    contract = contract_tasks()
    assert contract, "docs/ARCHITECTURE.md has no '## Tasks (tasks.py)' list to check against"
    core = _core_flags()
    takes_value = {t: {f: True for f in flags} for t, flags in contract.items()}
    problems: list[str] = []
    for call in _calls():
        argv = _strip_core_flags(call, core, problems)
        for task, args in split_tasks(argv, takes_value):
            if task not in contract:
                problems.append(f"{call.location}: task {task!r} is not in ARCHITECTURE.md")
                continue
            for flag in (a for a in args if a.startswith("-")):
                if flag not in contract[task]:
                    problems.append(
                        f"{call.location}: ARCHITECTURE.md gives {task!r} no flag "
                        f"{flag} (it lists: {', '.join(sorted(contract[task]))})"
                    )
    assert not problems, _report(problems)


def test_the_lifecycle_is_covered() -> None:
    core = _core_flags()
    used = {
        task for call in _calls() for task, _ in split_tasks(_strip_core_flags(call, core, []), {})
    }
    expected = {
        "setup",
        "validate",
        "build",
        "replicate",
        "versions",
        "promote",
        "rollback",
        "cleanup",
        "prune",
    }
    assert expected <= used, f"no pipeline runs: {sorted(expected - used)}"


def test_azure_tasks_run_inside_the_azure_cli_wrapper() -> None:
    problems = []
    for call in _calls():
        tasks = {t for t, _ in split_tasks(call.argv, {})} & AZURE_TASKS
        via = call.script.via_template or ""
        if tasks and not via.endswith("azure-cli.yml"):
            problems.append(
                f"{call.location}: `invoke {' '.join(call.argv)}` needs Azure but "
                "does not run through templates/steps/azure-cli.yml"
            )
    assert not problems, _report(problems)


def test_production_changes_need_an_approved_environment() -> None:
    """promote, rollback and prune --yes run only in deployment jobs on the guarded environment."""
    problems = []
    for call in _calls():
        for task, args in split_tasks(call.argv, {}):
            changes_production = task in {"promote", "rollback"} or (
                task in {"prune", "deprecate"} and "--yes" in args
            )
            if not changes_production:
                continue
            job: Job | None = call.script.step.job
            if job is None or not job.is_deployment:
                problems.append(f"{call.location}: `invoke {task}` must run in a deployment job")
            elif job.environment != "${{ variables.productionEnvironment }}":
                problems.append(
                    f"{call.location}: `invoke {task}` runs on environment "
                    f"{job.environment!r}, not ${{{{ variables.productionEnvironment }}}}"
                )
    assert not problems, _report(problems)


def test_prune_lists_before_it_deletes() -> None:
    maintenance = _pipeline("maintenance.yml")
    order = [
        (stage.name, args)
        for stage in maintenance.stages
        for job in stage.jobs
        for step in job.steps
        for call in _step_calls(step)
        for task, args in split_tasks(call.argv, {})
        if task == "prune"
    ]
    dry = [stage for stage, args in order if "--yes" not in args]
    wet = [stage for stage, args in order if "--yes" in args]
    assert dry and wet, "maintenance.yml: expected `invoke prune` both without and with --yes"
    deleting_stage = maintenance.stage(wet[0])
    assert deleting_stage is not None
    assert set(dry) & _upstream(maintenance, deleting_stage.name), (
        f"maintenance.yml: stage {wet[0]} deletes (--yes) without depending on the dry run in "
        f"{sorted(set(dry))}"
    )


def _step_calls(step: Step) -> list[InvokeCall]:
    from pipeline_model import invoke_calls, scripts_of

    return [call for script in scripts_of(step) for call in invoke_calls(script)]


def _upstream(pipeline: PipelineFile, stage_name: str) -> set[str]:
    names = [s.name for s in pipeline.stages]
    seen: set[str] = set()
    todo = [stage_name]
    while todo:
        stage = pipeline.stage(todo.pop())
        if stage is None:
            continue
        if "dependsOn" in stage.data:
            deps = [str(d) for d in as_list(stage.data["dependsOn"])]
        else:  # implicit: the stage before it
            index = names.index(stage.name)
            deps = names[index - 1 : index] if index else []
        for dep in deps:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


# --------------------------------------------------------------------------- templates


def test_template_references_exist() -> None:
    problems = []
    for path, line, written, _ in template_references():
        target = resolve_template(path, written)
        if not target.is_file():
            problems.append(
                f"{rel(path)}:{line}: template {written!r} not found "
                f"(resolved relative to {rel(path.parent)}/ to {target})"
            )
    assert not problems, _report(problems)


def test_template_parameters_are_declared_and_required_ones_passed() -> None:
    problems = []
    for path, line, written, passed in template_references():
        target = resolve_template(path, written)
        if not target.is_file():
            continue  # reported by test_template_references_exist
        declared = declared_parameters(target)
        for name in passed:
            if name not in declared:
                problems.append(
                    f"{rel(path)}:{line}: template {written!r} declares no parameter "
                    f"{name!r} (it has: {', '.join(sorted(declared)) or 'none'})"
                )
        for name, spec in declared.items():
            if "default" not in spec and name not in passed:
                problems.append(
                    f"{rel(path)}:{line}: template {written!r} needs parameter {name!r}"
                )
    assert not problems, _report(problems)


def test_every_template_is_used() -> None:
    used = {resolve_template(path, written) for path, _, written, _ in template_references()}
    unused = [
        rel(t) for t in yaml_files() if TEMPLATES_DIR in t.parents and t.resolve() not in used
    ]
    assert not unused, f"templates nobody references: {unused}"


def test_script_paths_exist() -> None:
    problems = []
    for parsed in _parsed():
        for step in parsed.steps:
            inputs = step.data.get("inputs") or {}
            for key in ("scriptPath", "filePath"):
                value = inputs.get(key) if isinstance(inputs, dict) else None
                if isinstance(value, str) and "$" not in value and not (REPO / value).exists():
                    problems.append(
                        f"{step.location(line_of(value))}: {key} {value!r} does not "
                        "exist in the repository"
                    )
    assert not problems, _report(problems)


# --------------------------------------------------------------------------- stages, jobs, outputs

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def test_stage_job_and_leg_names_are_valid_and_unique() -> None:
    problems = []
    for parsed in _parsed():
        stage_names = [s.name for s in parsed.stages]
        for stage in parsed.stages:
            if not IDENTIFIER.match(stage.name):
                problems.append(f"{parsed.name}:{line_of(stage.data)}: stage name {stage.name!r}")
            if stage_names.count(stage.name) > 1:
                problems.append(f"{parsed.name}:{line_of(stage.data)}: stage {stage.name} twice")
            job_names = [j.name for j in stage.jobs]
            for job in stage.jobs:
                if not IDENTIFIER.match(job.name):
                    problems.append(f"{parsed.name}:{line_of(job.data)}: job name {job.name!r}")
                if job_names.count(job.name) > 1:
                    problems.append(
                        f"{parsed.name}:{line_of(job.data)}: job {job.name} twice "
                        f"in stage {stage.name}"
                    )
                for leg in job.matrix_legs:
                    if not IDENTIFIER.match(str(leg)):
                        problems.append(
                            f"{parsed.name}:{line_of(leg)}: matrix leg {leg!r} in "
                            f"job {job.name}: letters, digits and _ only"
                        )
                step_names = [s.data["name"] for s in job.steps if "name" in s.data]
                for name in step_names:
                    if not IDENTIFIER.match(str(name)) or step_names.count(name) > 1:
                        problems.append(
                            f"{parsed.name}:{line_of(name)}: step name {name!r} in "
                            f"job {job.name} is not a unique identifier"
                        )
    assert not problems, _report(problems)


def test_depends_on_names_real_stages_and_jobs() -> None:
    problems = []
    for parsed in _parsed():
        stage_names = {s.name for s in parsed.stages}
        for stage in parsed.stages:
            for dep in as_list(stage.data.get("dependsOn")):
                if dep not in stage_names or dep == stage.name:
                    problems.append(
                        f"{parsed.name}:{line_of(dep, line_of(stage.data))}: stage "
                        f"{stage.name} dependsOn {dep!r}, which is not another stage "
                        f"of this pipeline ({', '.join(sorted(stage_names))})"
                    )
            job_names = {j.name for j in stage.jobs}
            for job in stage.jobs:
                for dep in as_list(job.data.get("dependsOn")):
                    if dep not in job_names or dep == job.name:
                        problems.append(
                            f"{parsed.name}:{line_of(dep, line_of(job.data))}: job "
                            f"{job.name} dependsOn {dep!r}, which is not another "
                            f"job of stage {stage.name}"
                        )
    assert not problems, _report(problems)


STAGE_OUTPUT = re.compile(r"stageDependencies\.(\w+)\.(\w+)\.outputs\['([^']+)'\]")
JOB_OUTPUT = re.compile(r"(?<!stage)dependencies\.(\w+)\.outputs\['([^']+)'\]")
STAGE_RESULT = re.compile(r"(?<!stage)dependencies\.(\w+)\.result\b")


def _sets_output(job: Job, step_name: str, variable: str) -> bool:
    for step in job.steps:
        if step.data.get("name") != step_name:
            continue
        text = "\n".join(str(s.text) for s in _scripts(step))
        pattern = rf"task\.setvariable variable={re.escape(variable)};[^\]]*isOutput=true"
        return re.search(pattern, text) is not None
    return False


def _scripts(step: Step) -> list[Any]:
    from pipeline_model import scripts_of

    return list(scripts_of(step))


def test_output_variable_references_point_at_real_outputs() -> None:
    """stageDependencies/dependencies references that would silently read as empty."""
    problems = []
    for parsed in _parsed():
        for stage in parsed.stages:
            upstream = _upstream(parsed, stage.name)
            for key_path, value in walk(stage.data):
                if not isinstance(value, str):
                    continue
                where = f"{parsed.name}:{line_of(value, line_of(stage.data))} (stage {stage.name})"
                for source_stage, job_name, ref in STAGE_OUTPUT.findall(value):
                    problems += _check_output(parsed, where, source_stage, job_name, ref, upstream)
                for source_stage in STAGE_RESULT.findall(value):
                    if source_stage not in upstream:
                        problems.append(
                            f"{where}: dependencies.{source_stage}.result, but "
                            f"{source_stage} is not a stage it depends on"
                        )
                del key_path
    assert not problems, _report(problems)


def _check_output(
    parsed: PipelineFile, where: str, stage_name: str, job_name: str, ref: str, upstream: set[str]
) -> list[str]:
    text = f"stageDependencies.{stage_name}.{job_name}.outputs['{ref}']"
    if stage_name not in upstream:
        return [f"{where}: {text}: {stage_name} is not a stage this one depends on"]
    source = parsed.stage(stage_name)
    job = next((j for j in source.jobs if j.name == job_name), None) if source else None
    if job is None:
        return [f"{where}: {text}: stage {stage_name} has no job {job_name}"]
    parts = ref.split(".")
    if job.matrix_legs:
        if len(parts) != 3 or parts[0] not in job.matrix_legs:
            return [
                f"{where}: {text}: job {job_name} is a matrix; expected "
                f"'<leg>.<step>.<variable>' with a leg of {sorted(job.matrix_legs)}"
            ]
        parts = parts[1:]
    elif job.is_deployment:
        if len(parts) != 3 or parts[0] != job_name:
            return [f"{where}: {text}: deployment job outputs are '{job_name}.<step>.<variable>'"]
        parts = parts[1:]
    if len(parts) != 2:
        return [f"{where}: {text}: expected '<step>.<variable>'"]
    step_name, variable = parts
    if not _sets_output(job, step_name, variable):
        return [
            f"{where}: {text}: no step named {step_name!r} in job {job_name} sets output "
            f"variable {variable!r} (##vso[task.setvariable variable={variable};isOutput=true])"
        ]
    return []


# --------------------------------------------------------------------------- secrets

SECRET_KEY = re.compile(
    r"password|passwd|secret|token|credential|privatekey|accesskey|apikey|connectionstring|"
    r"sastoken|key$",
    re.I,
)
REFERENCE = re.compile(r"^\s*(\$\([\w.]+\)|\$\[.*\]|\$\{\{.*\}\})\s*$", re.S)
SECRET_TEXT = [
    (re.compile(r"eyJ[\w-]{10,}\.[\w-]{10,}\."), "a JSON web token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"AccountKey=[^;$\s]+", re.I), "a storage account key"),
    (re.compile(r"[?&]sig=[\w%]{20,}"), "a SAS signature"),
    (
        re.compile(r"(client[_-]?secret|password)\s*[:=]\s*['\"]?[^\s'\"$]{6,}", re.I),
        "a literal secret value",
    ),
]


def test_no_literal_secret_values() -> None:
    problems = []
    for path in yaml_files():
        for key_path, value in walk(load(path)):
            if not key_path or not isinstance(key_path[-1], str) or key_path[-1].startswith("${{"):
                continue
            key = re.sub(r"[^a-z]", "", key_path[-1].lower())
            if not SECRET_KEY.search(key) or value in (None, "", False, True):
                continue
            if isinstance(value, (dict, list)):
                continue
            if not REFERENCE.match(str(value)):
                problems.append(
                    f"{rel(path)}:{line_of(value)}: {key_path[-1]} has a literal "
                    "value; secrets come only from the service connection or a "
                    "variable group, as $(name)"
                )
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            for pattern, what in SECRET_TEXT:
                if pattern.search(line):
                    problems.append(f"{rel(path)}:{number}: looks like {what}")
    assert not problems, _report(problems)


def test_scripts_never_expose_credentials() -> None:
    problems = []
    for script in all_scripts():
        text = str(script.text)
        for index, line in enumerate(text.splitlines()):
            where = script.step.location(script.line_at(index))
            code = line.split("#", 1)[0] if not line.lstrip().startswith("echo") else line
            if re.search(r"\bset\s+(-[a-z]*x|-o\s+xtrace)|\bbash\s+-[a-z]*x", code):
                problems.append(f"{where}: shell tracing (set -x) would print credentials")
            if re.search(r"\$\(System\.AccessToken\)", line, re.I):
                problems.append(
                    f"{where}: $(System.AccessToken) pasted into a script; map it "
                    "through env instead"
                )
            if re.search(
                r"SYSTEM_ACCESSTOKEN|idToken|servicePrincipalKey|AZURE_CLIENT_SECRET", line
            ):
                problems.append(f"{where}: the script reads a credential directly")
            for expression in re.findall(r"\$\{\{\s*(.*?)\s*\}\}", line):
                if script.step.file == AZURE_CLI_TEMPLATE and expression == "parameters.script":
                    continue
                problems.append(
                    f"{where}: ${{{{ {expression} }}}} pasted into a script; pass "
                    "values through env (queue-time text must not become code)"
                )
    assert not problems, _report(problems)


def test_azure_sign_in_happens_in_one_place_and_outlives_the_token() -> None:
    problems = []
    wrappers = []
    for parsed in _parsed():
        for step in parsed.steps:
            task = str(step.data.get("task", ""))
            if not task.startswith(("AzureCLI@", "AzurePowerShell@", "AzureResourceManager")):
                continue
            wrappers.append(step)
            inputs = step.data.get("inputs") or {}
            if parsed.path != AZURE_CLI_TEMPLATE:
                problems.append(f"{step.location()}: {task} outside templates/steps/azure-cli.yml")
            if task != "AzureCLI@2":
                problems.append(f"{step.location()}: use AzureCLI@2")
            if inputs.get("keepAzSessionActive") is not True:
                problems.append(
                    f"{step.location()}: keepAzSessionActive must be true: builds "
                    "outlive the federated token"
                )
            if inputs.get("addSpnToEnvironment") is True:
                problems.append(
                    f"{step.location()}: addSpnToEnvironment exports the ID token "
                    "to every process; imageforge does not need it"
                )
            if inputs.get("azureSubscription") != "${{ variables.azureServiceConnection }}":
                problems.append(
                    f"{step.location()}: azureSubscription must be "
                    "${{ variables.azureServiceConnection }} (templates/variables.yml)"
                )
            env = step.data.get("env") or {}
            if env.get("SYSTEM_ACCESSTOKEN") != "$(System.AccessToken)":
                problems.append(
                    f"{step.location()}: map SYSTEM_ACCESSTOKEN for AzurePipelinesCredential"
                )
    assert wrappers, "no AzureCLI@2 step found"
    assert not problems, _report(problems)


# --------------------------------------------------------------------------- published files


def _template_calls(name: str) -> list[tuple[Step, dict[str, Any]]]:
    calls = []
    for parsed in _parsed():
        for step in parsed.steps:
            template = step.data.get("template")
            if isinstance(template, str) and Path(template).name == name:
                calls.append((step, dict(step.data.get("parameters") or {})))
    return calls


def _published_globs() -> list[tuple[Step, str, str]]:
    """(step, kind, glob) for everything the pipelines publish."""
    globs: list[tuple[Step, str, str]] = []
    for step, params in _template_calls("publish-junit.yml"):
        globs.append((step, "test results", str(params.get("files", ""))))
    for step, params in _template_calls("publish-files.yml"):
        for line in str(params.get("contents", "")).splitlines():
            if line.strip():
                globs.append((step, "artifact", line.strip()))
    for parsed in _parsed():  # tasks used directly rather than through the templates
        for step in parsed.steps:
            task = str(step.data.get("task", ""))
            inputs = step.data.get("inputs") or {}
            if task.startswith("PublishTestResults@"):
                value = str(inputs.get("testResultsFiles", ""))
                if "parameters." not in value:
                    globs += [(step, "test results", v.strip()) for v in value.splitlines()]
            if task.startswith("CopyFiles@"):
                value = str(inputs.get("Contents", ""))
                if "parameters." not in value:
                    globs += [(step, "artifact", v.strip()) for v in value.splitlines()]
    return [(s, k, g) for s, k, g in globs if g]


def test_published_paths_are_the_files_the_tasks_write() -> None:
    contract = contract_files()
    assert contract, "docs/ARCHITECTURE.md has no '## Files the tasks write' list"
    known = {pattern: instantiate(pattern) for pattern in contract + PIPELINE_OWN_FILES}
    problems = []
    for step, kind, glob in _published_globs():
        regex = glob_regex(glob)
        if not any(regex.match(path) for path in known.values()):
            problems.append(
                f"{step.location()}: {kind} glob {glob!r} matches none of the files "
                f"the tasks write: {', '.join(contract + PIPELINE_OWN_FILES)}"
            )
    assert not problems, _report(problems)


def test_image_evidence_is_published() -> None:
    """Testinfra JUnit, Packer log, manifest and package inventory of every image build."""
    evidence = _template_calls("publish-image-evidence.yml")
    build_jobs = {step.job.name for step, _ in evidence if step.job}
    assert "Build" in build_jobs, "image-build.yml job Build does not publish its evidence"
    template = parse(TEMPLATES_DIR / "steps" / "publish-image-evidence.yml")
    published = {kind: [] for kind in ("test results", "artifact")}
    for step, kind, glob in _published_globs():
        if step.file == template.path:
            published[kind].append(glob_regex(glob))
    needed = {
        "test results": ["reports/<image>/<version>/junit.xml"],
        "artifact": [
            "build/<image>/packer.log",
            "build/<image>/manifest.json",
            "reports/<image>/<version>/inventory.json",
        ],
    }
    problems = [
        f"{rel(template.path)}: no {kind} glob matches {pattern}"
        for kind, patterns in needed.items()
        for pattern in patterns
        if not any(r.match(instantiate(pattern)) for r in published[kind])
    ]
    published_when = ("always()", "succeededOrFailed()")
    default = declared_parameters(template.path).get("condition", {}).get("default")
    for step in template.steps:
        if step.data.get("template") == "publish-files.yml":
            condition = (step.data.get("parameters") or {}).get("condition", "always()")
            if condition == "${{ parameters.condition }}":
                condition = default
            if condition not in published_when:
                problems.append(
                    f"{step.location()}: evidence must be published when the build "
                    f"failed too (condition {condition!r})"
                )
    # a caller may narrow it (a scheduled run skips images it did not rebuild), never to
    # "only when the build succeeded"
    for step, _ in evidence:
        condition = str((step.data.get("parameters") or {}).get("condition", "always()"))
        if not any(condition == c or condition.startswith(f"and({c}") for c in published_when):
            problems.append(f"{step.location()}: evidence published only on success ({condition})")
    assert not problems, _report(problems)


def test_publishing_runs_after_failures() -> None:
    problems = []
    for path in (
        TEMPLATES_DIR / "steps" / "publish-junit.yml",
        TEMPLATES_DIR / "steps" / "publish-files.yml",
    ):
        for step in parse(path).steps:
            condition = str(step.data.get("condition", "succeeded()"))
            if not condition.startswith(("always()", "succeededOrFailed()", "${{ parameters.")):
                problems.append(
                    f"{step.location()}: condition {condition!r} skips publishing "
                    "when an earlier step failed"
                )
    assert not problems, _report(problems)


def test_junit_written_in_a_job_is_published_by_that_job() -> None:
    problems = []
    for parsed in _parsed():
        for stage in parsed.stages:
            for job in stage.jobs:
                globs = [
                    glob_regex(str((s.data.get("parameters") or {}).get("files", "")))
                    for s in job.steps
                    if str(s.data.get("template", "")).endswith("publish-junit.yml")
                ]
                for step in job.steps:
                    for script in _scripts(step):
                        for written in re.findall(r"--junit-?xml[= ](\S+)", str(script.text)):
                            if not any(g.match(written) for g in globs):
                                problems.append(
                                    f"{step.location()}: writes {written} but job "
                                    f"{job.name} publishes no test results matching it"
                                )
    assert not problems, _report(problems)


# --------------------------------------------------------------------------- images, triggers


def _images_of(name: str) -> list[str]:
    raw = load(PIPELINES_DIR / name)
    for param in raw.get("parameters") or []:
        if param.get("name") == "images":
            return [i["name"] if isinstance(i, dict) else str(i) for i in param["default"]]
        if param.get("name") == "image":
            return [str(v) for v in param.get("values") or []]
    return []


def test_every_pipeline_knows_the_same_images() -> None:
    build = _images_of("image-build.yml")
    assert build, "image-build.yml: no `images` parameter"
    problems = [
        f".azure-pipelines/{name}: images {images} differ from image-build.yml's {build}"
        for name in ("image-promote.yml", "image-rollback.yml", "maintenance.yml")
        if sorted(images := _images_of(name)) != sorted(build)
    ]
    raw = load(PIPELINES_DIR / "image-build.yml")
    for param in raw["parameters"]:
        for image in param.get("default") or [] if param.get("name") == "images" else []:
            leg = re.sub(r"[^A-Za-z0-9_]", "_", image["name"])
            if image.get("leg") != leg:
                problems.append(
                    f"image-build.yml:{line_of(image)}: image {image['name']} "
                    f"should have leg {leg!r}"
                )
    defined = sorted(
        p.name.removesuffix(".pkrvars.hcl") for p in (REPO / "images").glob("*.pkrvars.hcl")
    )
    if defined and sorted(build) != defined:
        problems.append(f"image-build.yml builds {sorted(build)} but images/ defines {defined}")
    assert not problems, _report(problems)


def test_build_triggers() -> None:
    raw = load(PIPELINES_DIR / "image-build.yml")
    trigger = raw.get("trigger") or {}
    assert trigger.get("branches", {}).get("include") == ["main"], "CI must build main"
    paths = set(trigger.get("paths", {}).get("include") or [])
    needed = {"images/", "templates/", "builders/", "provisioners/", "tests/image/", "imageforge/"}
    assert needed <= paths, f"image-build.yml trigger misses paths {sorted(needed - paths)}"
    assert raw.get("pr"), "image-build.yml: no pull-request validation"
    schedules = raw.get("schedules") or []
    assert any(s.get("always") is True for s in schedules), (
        "image-build.yml: the weekly rebuild must run `always: true` (base images change "
        "without commits)"
    )


def test_manual_pipelines_do_not_trigger_themselves() -> None:
    for name in ("image-promote.yml", "image-rollback.yml", "maintenance.yml"):
        raw = load(PIPELINES_DIR / name)
        assert raw.get("trigger") == "none", f"{name}: trigger must be none"
        assert raw.get("pr") == "none", f"{name}: pr must be none"


def test_promote_parameters() -> None:
    raw = load(PIPELINES_DIR / "image-promote.yml")
    params = {p["name"]: p for p in raw["parameters"]}
    assert {"image", "version", "regions", "reason"} <= set(params)
    for required in ("version", "reason"):
        assert "default" not in params[required], f"image-promote.yml: {required} must be asked"


def _free_text_parameters(path: Path) -> set[str]:
    """String parameters a person types at queue time (no `values:` list to pick from)."""
    raw = load(path)
    return {
        str(p["name"])
        for p in raw.get("parameters") or []
        if isinstance(p, dict) and p.get("type", "string") == "string" and "values" not in p
    }


def test_free_text_parameters_are_refused_with_macro_syntax_before_a_step_uses_them() -> None:
    """A free-text parameter reaches a step only after refuse-macros.yml has checked it in the
    same job: the agent would expand `$(System.AccessToken)` typed as a reason (issue 12.8)."""
    problems = []
    checked = 0
    for path in pipeline_files():
        free = _free_text_parameters(path)
        if not free:
            continue
        for stage in parse(path).stages:
            for job in stage.jobs:
                guarded: set[str] = set()
                for step in job.steps:
                    if str(step.data.get("template", "")).endswith("refuse-macros.yml"):
                        values = (step.data.get("parameters") or {}).get("values") or {}
                        guarded |= {
                            k for k, v in values.items() if re.fullmatch(
                                rf"\$\{{\{{\s*parameters\.{re.escape(str(k))}\s*\}}\}}",
                                str(v))
                        }  # fmt: skip
                        continue
                    text = json.dumps(step.data, default=str)
                    for name in sorted(free):
                        if re.search(rf"\$\{{\{{\s*parameters\.{name}\s*\}}\}}", text):
                            checked += 1
                            if name not in guarded:
                                problems.append(
                                    f"{step.location()}: uses parameter {name} before "
                                    "templates/steps/refuse-macros.yml checked it in this job"
                                )
        name_line = str(load(path).get("name", ""))
        for name in free:
            if f"parameters.{name}" in name_line:
                problems.append(f"{rel(path)}: the run name holds free-text parameter {name}")
    assert checked >= 5, "no step of image-promote.yml or image-rollback.yml uses its parameters?"
    assert not problems, _report(problems)


def test_refuse_macros_fails_on_macro_syntax_without_echoing_the_value() -> None:
    raw = load(TEMPLATES_DIR / "steps" / "refuse-macros.yml")
    ((each_key, each_body),) = raw["steps"][0].items()
    assert re.fullmatch(r"\$\{\{\s*each (\w+) in parameters\.values\s*\}\}", each_key)
    ((if_key, if_steps),) = each_body[0].items()
    assert if_key == "${{ if contains(item.value, '$(') }}"
    (step,) = if_steps
    assert "exit 1" in step["bash"] and "item.value" not in step["bash"]
    assert "${{ item.key }}" in step["bash"]


def test_replicate_gives_up_before_its_job_is_cancelled() -> None:
    """`invoke replicate --timeout` comes from the job's own timeout (issue 12.7): a job
    cancelled mid-wait says nothing useful, imageforge's timeout says which regions remain."""
    calls = [c for c in all_invoke_calls() if c.argv[:1] == ["replicate"]]
    assert calls, "no pipeline runs invoke replicate"
    problems = []
    for call in calls:
        step, job = call.script.step, call.script.step.job
        env = step.data.get("env") or (step.data.get("parameters") or {}).get("env") or {}
        minutes = str(job.data.get("timeoutInMinutes", "")) if job else ""
        if "--timeout" not in call.argv:
            problems.append(f"{call.location()}: invoke replicate without --timeout")
        elif not minutes or str(env.get("JOB_MINUTES", "")) != minutes:
            problems.append(
                f"{call.location()}: --timeout must derive from the job's timeoutInMinutes "
                f"({minutes or 'unset'}) through JOB_MINUTES"
            )
    assert not problems, _report(problems)


def test_tests_on_hosted_agents_admit_only_the_agent_of_the_job() -> None:
    """A Microsoft-hosted agent's address changes every job (issue 12.6): every pipeline step
    that deploys a test VM (invoke build, invoke test-image) asks for `auto`."""
    calls = [c for c in all_invoke_calls() if c.argv[:1] in (["build"], ["test-image"])]
    calls = [c for c in calls if "--dry-run" not in c.argv]
    assert calls, "no pipeline builds or tests an image"
    problems = []
    for call in calls:
        step = call.script.step
        env = step.data.get("env") or (step.data.get("parameters") or {}).get("env") or {}
        if str(env.get("IMAGEFORGE_TEST_ALLOWED_SOURCE", "")) != "auto":
            problems.append(f"{call.location()}: IMAGEFORGE_TEST_ALLOWED_SOURCE is not auto")
    assert not problems, _report(problems)


def test_the_schedule_rebuilds_only_outdated_images() -> None:
    """Issue 15: the weekly run asks `invoke outdated --check` per image and builds only when it
    says so; pushes, manual runs and the fullRebuild parameter build everything."""
    pipeline = _pipeline("image-build.yml")
    raw = load(pipeline.path)
    assert raw["schedules"], "image-build.yml has no schedule"
    full = {p["name"]: p for p in raw["parameters"]}["fullRebuild"]
    assert (full["type"], full["default"]) == ("boolean", False)
    job = next(j for s in pipeline.stages for j in s.jobs if j.name == "Build")
    calls = [
        c for c in all_invoke_calls()
        if c.script.step.file == pipeline.path and c.script.step.job
        and c.script.step.job.name == job.name
    ]  # fmt: skip
    names = [c.argv[0] for c in calls]
    assert names.index("outdated") < names.index("build"), names
    check = calls[names.index("outdated")]
    assert "--check" in check.argv and "Schedule" in check.script.text
    assert "FULL_REBUILD" in check.script.text and "rebuild=false" in check.script.text
    build_step = calls[names.index("build")].script.step
    condition = str((build_step.data.get("parameters") or {}).get("condition", ""))
    assert "variables['rebuild']" in condition and "'true'" in condition
    recorded = next(s for s in job.steps if s.data.get("name") == "built")
    assert "variables['rebuild']" in str(recorded.data.get("condition", ""))


# --------------------------------------------------------------------------- variables

MACRO = re.compile(r"\$\(([A-Za-z_][\w.]*)\)")
COMPILE_VARIABLE = re.compile(r"\bvariables\.(\w+)")


def _defined_variables() -> set[str]:
    names: set[str] = set()
    for parsed in _parsed():
        for key_path, value in walk(parsed.doc):
            if key_path and key_path[-1] == "variables":
                if isinstance(value, dict):
                    names |= {str(k) for k in value}
                elif isinstance(value, list):
                    names |= {str(v["name"]) for v in value if isinstance(v, dict) and "name" in v}
            if key_path and key_path[-1] == "matrix" and isinstance(value, dict):
                for leg in value.values():
                    if isinstance(leg, dict):
                        names |= {str(k) for k in leg}
    return names


def test_variables_used_are_defined() -> None:
    """$(name) outside scripts and ${{ variables.name }} resolve to a YAML-defined variable.

    Names with a dot are predefined (Build.BuildId) or step outputs (built.version).
    """
    defined = _defined_variables()
    script_texts = {id(s.text) for s in all_scripts()}
    problems = []
    for path in yaml_files():
        for key_path, value in walk(load(path)):
            if not isinstance(value, LineStr) or id(value) in script_texts:
                continue
            if key_path and key_path[-1] in ("script", "bash", "inlineScript"):
                continue
            names = [m for m in MACRO.findall(value) if "." not in m]
            names += [m for m in COMPILE_VARIABLE.findall(value)] if "${{" in value else []
            for name in names:
                if name not in defined:
                    problems.append(
                        f"{rel(path)}:{line_of(value)}: variable {name!r} is not "
                        "defined in templates/variables.yml, a matrix or a job"
                    )
    assert not problems, _report(problems)


# --------------------------------------------------------------------------- the variable group


def _documented_group_variables() -> list[str]:
    text = (REPO / "docs" / "pipelines.md").read_text(encoding="utf-8")
    return re.findall(r"^\| `(INVOKE_IMAGEFORGE_\w+)` \|", text, re.M)


def test_variable_group_variables_are_imageforge_settings(
    invoke_contexts: dict[str, Any] | None,
) -> None:
    """The group's variables reach imageforge only if they name a declared setting."""
    documented = _documented_group_variables()
    assert documented, "docs/pipelines.md: no variable-group table (| `INVOKE_IMAGEFORGE_...` |)"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from imageforge.site import Site

    settings = set(Site.__dataclass_fields__) - {"root"}
    declared: set[str] | None = None
    module = sys.modules.get("_tasks_under_pipeline_test")
    if invoke_contexts is not None and module is not None:
        from invoke import Collection

        configuration = Collection.from_module(module).configuration()
        declared = set((configuration.get("imageforge") or {}).keys())
    problems = []
    for variable in documented:
        key = variable.removeprefix("INVOKE_IMAGEFORGE_").lower()
        if key not in settings:
            problems.append(
                f"docs/pipelines.md: {variable}: imageforge.site.Site has no setting {key!r}"
            )
        elif declared is not None and key not in declared:
            problems.append(
                f"docs/pipelines.md: {variable}: tasks.py's ns.configure does not "
                f"declare imageforge.{key}, so Invoke ignores the variable"
            )
    assert not problems, _report(problems)
