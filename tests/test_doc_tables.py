"""The generated tables inside the docs are the tools' current output (a table that drifts from the code fails
here, and the message names the command that regenerates it)."""
import pytest

pytestmark = pytest.mark.slow  # every recipe model built on the meta device: about a minute together


@pytest.mark.parametrize('tool, doc', [('param_table.py', 'docs/adapters.md'), ('model_zoo.py', 'docs/model_zoo.md')])
def test_generated_table_is_current(run_tool, tool, doc):
    res = run_tool(tool, '--check', doc)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f'{doc}: the table is current' in res.stdout
