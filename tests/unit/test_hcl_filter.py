"""The one `hcl` filter: any value becomes an HCL expression Packer reads back exactly.

The proof is a real Packer: adversarial values are rendered by the filter into the
`custom_data` of a manifest post-processor on a `null` source with no communicator, and the
manifest Packer writes (JSON) must hold exactly the original values. One build, well under a
second.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers.cli import clean_env

from imageforge import hclio
from imageforge.errors import RenderError
from imageforge.render import Expr, attrs, hcl, hcl_lines, hcl_map, hcl_string

ADVERSARIAL = {
    "backslash": "C:\\Windows\\System32",
    "trailing_backslash": "ends with \\",
    "quotes": 'say "hi"',
    "quote_breakout": '", evil = "x',
    "interpolation": "${var.client_secret}",
    "escaped_interpolation": "$${already}",
    "backslash_interpolation": "\\${x}",
    "directive": "%{ if true }x%{ endif }",
    "escaped_directive": "%%{",
    "newline": "line 1\nline 2",
    "newline_breakout": '"\n  evil = "x',
    "crlf": "a\r\nb",
    "tab": "a\tb",
    "lone_dollar_percent": "$ % $$ %% { } $}",
    "heredoc": "<<EOF\nx\nEOF",
    "comment": "# not a comment // nor /* this */",
    "unicode": "Zürich ✓ 🚀 \u2028",
    "control": "bell\x07 esc\x1b del\x7f",
    "empty": "",
}


# --- what the filter writes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ("a\\b", '"a\\\\b"'),
        ('a"b', '"a\\"b"'),
        ("${x}", '"$${x}"'),
        ("%{x}", '"%%{x}"'),
        ("a\nb", '"a\\nb"'),
        ("a\rb", '"a\\rb"'),
        ("a\tb", '"a\\tb"'),
        ("$x %x", '"$x %x"'),
    ],
)
def test_hcl_string_escapes(value, quoted):
    assert hcl_string(value) == quoted


def test_the_filter_keeps_packer_template_actions_for_the_templates_own_commands():
    # execute_command needs Packer's {{ .Path }}; image definitions may not contain "{{"
    # (imageforge.config refuses it) because no escape keeps it literal in Packer.
    assert hcl_string("{{ .Path }}") == '"{{ .Path }}"'


@pytest.mark.parametrize(
    ("value", "expression"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (100, "100"),
        (1.5, "1.5"),
        ("x", '"x"'),
        (["a", 1, True], '["a", 1, true]'),
        (("t",), '["t"]'),
        ([], "[]"),
        ({}, "{}"),
    ],
)
def test_hcl_renders_python_values(value, expression):
    assert hcl(value) == expression


def test_hcl_refuses_values_it_cannot_express():
    with pytest.raises(RenderError, match="cannot render NoneType value None as HCL"):
        hcl(None)


def test_hcl_map_sorts_quotes_and_aligns_keys():
    assert hcl_map({"b": 1, "long-key": "v", "a": Expr("var.x")}) == (
        '{\n  "a"        = var.x\n  "b"        = 1\n  "long-key" = "v"\n}'
    )


def test_hcl_map_escapes_keys_too():
    assert hcl_map({"${k}": "v"}) == '{\n  "$${k}" = "v"\n}'


def test_hcl_lines_writes_one_item_a_line():
    assert hcl_lines(["a", Expr("local.b")], 2) == '[\n    "a",\n    local.b,\n  ]'


def test_attrs_aligns_runs_and_skips_none():
    text = attrs([("a", 1), None, ("long_name", "x"), ("skipped", None)], indent=2)
    assert text == '  a         = 1\n  long_name = "x"'


def test_attrs_lets_a_multi_line_value_stand_alone():
    text = attrs([("a", 1), ("m", Expr("{\n  x = 1\n}")), ("bb", 2)], indent=0)
    assert text == "a = 1\nm = {\n  x = 1\n}\nbb = 2"


# --- read back ---------------------------------------------------------------------------


def test_python_hcl2_reads_back_values_without_template_sequences():
    # python-hcl2 8.x parses HCL but does not evaluate templates ($${ stays $${), so it can
    # only confirm the values without ${ or %{; Packer below confirms all of them.
    plain = {k: v for k, v in ADVERSARIAL.items() if "${" not in v and "%{" not in v}
    text = "".join(f"{key} = {hcl(value)}\n" for key, value in plain.items())
    assert hclio.loads(text) == plain


def manifest_template(values: dict[str, str]) -> str:
    return f"""locals {{
  values = {hcl_map(values, 2)}
}}

source "null" "readback" {{
  communicator = "none"
}}

build {{
  sources = ["source.null.readback"]

  post-processor "manifest" {{
    output      = "manifest.json"
    custom_data = local.values
  }}
}}
"""


def packer_read_back(packer: str, directory: Path, values: dict[str, str]) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "readback.pkr.hcl").write_text(manifest_template(values), encoding="utf-8")
    proc = subprocess.run(
        [packer, "build", "-color=false", "."],
        cwd=directory,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    return manifest["builds"][-1]["custom_data"]


def test_packer_reads_back_exactly_the_adversarial_values(packer_path, tmp_path):
    assert packer_read_back(packer_path, tmp_path, ADVERSARIAL) == ADVERSARIAL


def test_packer_reads_back_adversarial_map_keys(packer_path, tmp_path):
    values = {'key ${x} %{y} "q" \\ \n': "v"}
    assert packer_read_back(packer_path, tmp_path, values) == values


def test_packer_would_rewrite_template_actions_which_is_why_config_refuses_them(
    packer_path, tmp_path
):
    got = packer_read_back(packer_path, tmp_path, {"action": "{{ .Path }}"})
    assert got["action"] != "{{ .Path }}"
