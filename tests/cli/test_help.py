"""Every subcommand and every flag of `modelplane` says what it is for in `--help`."""

from __future__ import annotations

import argparse
import subprocess
import sys

from modelplane.cli.main import SUBCOMMANDS, build_parser


def undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not helps.get(name) and not sub.description:
                    found.append(f"{path} {name}")
                found += undocumented(sub, f"{path} {name}")
        elif not action.help or action.help == argparse.SUPPRESS:
            found.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return found


def test_every_subcommand_and_flag_has_help_text():
    assert undocumented(build_parser(), "modelplane") == []


def test_each_subcommand_prints_its_help():
    for command in SUBCOMMANDS:
        result = subprocess.run(
            [sys.executable, "-m", "modelplane", command, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (command, result.stderr)
        assert f"usage: modelplane {command}" in result.stdout


def test_an_unknown_flag_is_said_with_the_usage_of_its_subcommand():
    """argparse says it with the top-level usage (`modelplane [-h] COMMAND ...`), which does not show
    the flags the subcommand does take. A command that stands for kubectl's exits 1, as kubectl does
    (`kubectl get pods --bogus`); modelplane's own commands exit 2, as argparse does."""
    for argv, usage, code in (
        (["get", "isvc", "--bogus"], "usage: modelplane get", 1),
        (["logs", "iris", "--bogus"], "usage: modelplane logs", 1),
        (["storage", "fetch", "s3://b/m", "/tmp/m", "--bogus"], "usage: modelplane storage fetch", 2),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "modelplane", *argv], capture_output=True, text=True, check=False
        )
        assert result.returncode == code
        assert result.stderr.startswith(usage), result.stderr
        assert "error: unrecognized arguments: --bogus" in result.stderr


def flag_help(path: list[str], flag: str) -> str:
    """The help text of `flag` of the subcommand at `path` (`["storage", "fetch"]`)."""
    parser = build_parser()
    for name in path:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subparsers.choices[name]
    return next(a.help for a in parser._actions if flag in a.option_strings)


def test_the_help_of_a_files_flag_names_every_source_it_reads():
    """`-f` reads files, folders, http(s) URLs and `-`, and may be given several times, as the docs
    (control-plane-api.md) show it: `apply -f a.yaml -f b.yaml`, `apply -f https://...`."""
    for command in ("apply", "create", "replace", "delete"):
        text = flag_help([command], "-f")
        for word in ("folder", "URL", "stdin", "repeatable"):
            assert word in text, (command, text)
    assert "repeatable" in flag_help(["up"], "-f")


def test_the_help_of_a_default_read_from_the_environment_names_the_variable():
    """storage.md: the folders default to `$MODELPLANE_..._DIR`, else a folder of `MODELPLANE_HOME`,
    and the concurrency to `MODELPLANE_STORAGE_CONCURRENCY`: a fixed `~/.modelplane/...` is not what
    runs where `MODELPLANE_HOME` is set."""
    for flag, variable in (
        ("--cache-dir", "$MODELPLANE_CACHE_DIR"),
        ("--credentials-dir", "$MODELPLANE_STORAGE_CONFIG_DIR"),
        ("--pvc-dir", "$MODELPLANE_PVC_DIR"),
        ("--concurrency", "$MODELPLANE_STORAGE_CONCURRENCY"),
    ):
        text = flag_help(["storage", "fetch"], flag)
        assert variable in text, (flag, text)
        if flag.endswith("-dir"):
            assert "MODELPLANE_HOME" in text, (flag, text)
    assert "8080" in flag_help(["router"], "--port")
