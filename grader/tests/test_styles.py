"""The template filled in correctly, in three styles, scores full marks everywhere it runs.

The reference and the corpus' two complete alternative styles (``style_b``, ``style_c`` in
grader/tests/corpus/correct.toml: every solution region written differently, template
shaped; ``m2_style_b``, ``m2_style_c`` for module 2's regions) are graded in every module on
the host's sandbox and in the container built from the very Gradescope bundle (``grader
gradescope``): 3 styles x 3 modules x 2 ways, at the grading budget, all 100 / 100.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader.course.assignment import load_assignment
from grader.evidence.mutations import apply_mutations, load_corpus
from grader.grading.runner import grade_command
from grader.platforms.containers import grade_in_container
from grader.platforms.images import ensure_image

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.evidence]

CORPUS = Path(__file__).resolve().parent / "corpus" / "correct.toml"
STYLES = ("reference", "style_b", "style_c")
MODULES = ("module0", "module1", "module2")


@pytest.fixture(scope="module")
def submissions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One folder per style holding every module's files: a style's module-2 regions are
    the corpus entry ``m2_<style>``."""
    entries = {e.name: e for e in load_corpus(CORPUS)}
    module2 = load_assignment("module2")
    out = {}
    for style in STYLES:
        edits = (
            [] if style == "reference" else [*entries[style].edits, *entries[f"m2_{style}"].edits]
        )
        out[style] = apply_mutations(
            module2.reference_dir, edits, tmp_path_factory.mktemp(style), module2.reference_layer
        )
    return out


def _host(submission: Path, module: str, out: Path) -> dict:
    proc = subprocess.run(
        grade_command(submission, module, out, mode="sandbox"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("module", MODULES)
def test_three_styles_score_full_marks_on_the_host_and_in_the_bundle(
    module: str, submissions: dict[str, Path], tmp_path: Path
) -> None:
    from docker_env import base_image, docker_client

    client = docker_client()
    assignment = load_assignment(module)
    image = ensure_image(assignment, base=base_image(client), client=client)
    with ThreadPoolExecutor(max_workers=2) as pool:
        host = {
            s: pool.submit(_host, sub, module, tmp_path / f"{s}.host.json")
            for s, sub in submissions.items()
        }
        boxed = {
            s: pool.submit(
                grade_in_container,
                sub,
                assignment,
                tmp_path / f"{s}.box.json",
                image=image,
                client=client,
            )
            for s, sub in submissions.items()
        }
        results = {
            (s, way): future.result()
            for way, futures in (("sandbox", host), ("bundle", boxed))
            for s, future in futures.items()
        }
    for (style, way), doc in results.items():
        failed = [
            t["name"] + ": " + t["output"][:300] for t in doc["tests"] if t["status"] != "passed"
        ]
        assert doc["score"] == assignment.max_score, (style, way, doc["output"][:500], failed[:3])
        assert doc["extra_data"]["status"] == "ok", (style, way, doc["extra_data"])
        assert len(doc["tests"]) > 20, (style, way)  # a real run, not an empty report
