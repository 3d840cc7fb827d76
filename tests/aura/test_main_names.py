"""A mission defined in a script gets the same name however the file is
run (``python script.py``, ``python -m``) and when it is imported, so a
mission started by the script is recovered by any process importing it."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import aura

from .processes import python

SCRIPT = textwrap.dedent(
    """
    import sys
    import aura

    @aura.step
    def greet(who):
        return f"hello {who}"

    @aura.mission
    async def hello(ctx, who):
        greeting = await ctx.step(greet, who)
        await ctx.wait_signal("go")
        return greeting

    if __name__ == "__main__":
        print(aura.mission_definition(hello).name, aura.step_definition(greet).name)
        if len(sys.argv) > 1:
            with aura.Runtime(sys.argv[1], missions=[hello]) as rt:
                rt.start(hello, "world", mission_id="h")
                rt.wait("h", 30, until={aura.MissionStatus.WAITING})
    """
)


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return python(*args, cwd=cwd)


def test_a_script_and_its_import_name_missions_alike(tmp_path: Path) -> None:
    (tmp_path / "hello_app.py").write_text(SCRIPT)
    pkg = tmp_path / "agents"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "hello.py").write_text(SCRIPT)
    ran = run(tmp_path, "hello_app.py")
    assert ran.stdout.split() == ["hello_app:hello", "hello_app:greet"], ran.stderr
    nested = run(tmp_path, str(pkg / "hello.py"))
    assert nested.stdout.split() == ["agents.hello:hello", "agents.hello:greet"], nested.stderr
    as_module = run(tmp_path, "-m", "agents.hello")
    assert as_module.stdout.split() == nested.stdout.split(), as_module.stderr
    imported = run(
        tmp_path,
        "-c",
        "import agents.hello as m, aura; print(aura.mission_definition(m.hello).name)",
    )
    assert imported.stdout.strip() == "agents.hello:hello", imported.stderr


def test_a_mission_started_by_a_script_is_recovered_by_an_importer(tmp_path: Path) -> None:
    (tmp_path / "hello_app.py").write_text(SCRIPT)
    data = tmp_path / "data"
    started = run(tmp_path, "hello_app.py", str(data))
    assert started.returncode == 0, started.stderr
    finish = (
        "import sys, aura, hello_app\n"
        "with aura.Runtime(sys.argv[1], missions=[hello_app.hello]) as rt:\n"
        "    rt.signal('h', 'go')\n"
        "    print(rt.handle('h').result(timeout=30))\n"
    )
    done = run(tmp_path, "-c", finish, str(data))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello world"


def test_main_without_a_file_must_name_its_missions(tmp_path: Path) -> None:
    code = "import aura\n@aura.mission\nasync def m(ctx):\n    return 1\n"
    refused = run(tmp_path, "-c", code)
    assert refused.returncode != 0
    assert "DefinitionError" in refused.stderr and "name=" in refused.stderr
    named = run(
        tmp_path,
        "-c",
        "import aura\n@aura.mission(name='demo:m')\nasync def m(ctx):\n    return 1\n"
        "print(aura.mission_definition(m).name)",
    )
    assert named.stdout.strip() == "demo:m", named.stderr


def test_names_of_importable_modules_are_unchanged() -> None:
    from . import missions as m

    assert aura.mission_definition(m.arithmetic).name == "tests.aura.missions:arithmetic"
