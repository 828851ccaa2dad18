"""README.md's demo, pasted as a user would: its Python block runs against tidegate (both
backends) and prints every record it produced, at the offset its partition gives it."""

import ast
import re

from harness import REPO, describe, python_of, run, unique_topic


def demo_block():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) == 1, f"README.md has {len(blocks)} Python blocks; this test runs one"
    return blocks[0]


def test_readme_demo_runs_as_pasted(tidegate):
    # Only the address and the names change: SMQ keeps topics and groups across runs.
    topic = unique_topic("readme-demo")
    code = demo_block().replace("127.0.0.1:9092", tidegate.bootstrap)
    code = re.sub(r'(?<!b)"demo"', repr(topic).replace("'", '"'), code)
    res = run([str(python_of("venv")), "-c", code], timeout=120)
    assert res.returncode == 0, describe(res)
    line = re.compile(r"^(\d+) (\d+) (b'[^']*') (b'[^']*') (\[.*\])$")
    printed = []
    for text in res.stdout.splitlines():
        fields = line.match(text)
        assert fields, f"unexpected output line {text!r}\n{describe(res)}"
        printed.append(tuple(ast.literal_eval(f) for f in fields.groups()))
    printed.sort()
    # partition, offset, key, value, headers: record i went to partition i % 4.
    want = sorted((i % 4, i // 4, f"k{i}".encode(), f"hello {i}".encode(), [("source", b"demo")])
                  for i in range(10))
    assert printed == want, describe(res)
