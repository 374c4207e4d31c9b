"""Gates without the Prefect UI: the answer forms, the CLI with no terminal, a gate's timeout."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flows.gate_forms import (
    GateDecision,
    GateRequest,
    GateStopped,
    decided_options,
    parse_answer,
    problems_with,
)
from flows.gates import gate_answerer
from sim.embedded import RunningSimulator
from tasks.plan import plan_screenplay
from tasks.plan.defaults import load_defaults
from tasks.plan.film import plan_film
from tasks.plan.screenplay_file import load_screenplay
from tasks.schema.options import FilmOptions
from tests.film_helpers import (
    chain_scenes,
    film_command,
    harness_environment,
    render,
    sim_stats,
    write_screenplay,
)

REPO = Path(__file__).resolve().parents[1]


def renders(url: str, family: str) -> int:
    return sum(1 for e in sim_stats(url)["executions"] if e["family"] == family)


def test_a_terminal_answer_reads_into_the_same_decision_as_the_form() -> None:
    assert parse_answer("") == GateDecision()
    assert parse_answer("stop").then == "stop"
    decision = parse_answer("keyframe 1, sequence 2, pick 0=1")
    assert (decision.redo_keyframes, decision.redo_sequences, decision.pick) == ([1], [2], ["0=1"])
    assert decision.then == "look again"  # a redo on the terminal is shown again
    with pytest.raises(ValueError, match="cannot read 'frame 1'"):
        parse_answer("frame 1")
    with pytest.raises(ValueError, match="SEQ=TAKE"):
        parse_answer("pick 2")


def test_a_decision_is_checked_against_the_plan_and_becomes_plain_options(
    tmp_path: Path,
) -> None:
    scenes = chain_scenes(chains=2, shots=2)
    plan = plan_film(load_screenplay(write_screenplay(tmp_path, scenes)), load_defaults(), takes=2)
    wrong = GateDecision(redo_keyframes=[2], redo_sequences=[4], pick=["1=2", "x"])
    assert problems_with(wrong, plan) == [
        "keyframe 2: the film's generated keyframes are of chains [0, 1] (an author's image is "
        "not re-rolled).",
        "sequence 4: the film has sequences 0 to 3.",
        "pick 1=2: sequence 1 has takes 0 to 1.",
        "pick 'x' is not SEQ=TAKE; write e.g. 2=1 (sequence 2, take 1)",
    ]
    right = GateDecision(redo_keyframes=[1], redo_sequences=[3], pick=["1=1"])
    assert problems_with(right, plan) == []
    once = decided_options(FilmOptions(), right)
    twice = decided_options(once, right)  # each re-roll at a gate rolls again
    assert (twice.render.rerender_keyframe, twice.render.rerender) == ((1, 1), (3, 3))
    assert twice.render.pick == ("1=1",)


@pytest.mark.usefixtures("prefect_api")
def test_a_cli_gate_without_a_terminal_ends_the_run_saying_how_to_go_on_and_loses_nothing(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    screenplay = write_screenplay(tmp_path, chain_scenes(chains=2, shots=1))
    out = tmp_path / "out"
    env = harness_environment()
    gated = subprocess.run(
        film_command(screenplay, out, [sim.url], "--gates", "cast"),
        env=env, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    said = gated.stdout + gated.stderr
    assert gated.returncode == 8, said  # stopped at a gate
    assert "The cast gate needs an answer, and this run has no terminal to ask on" in said
    assert (renders(sim.url, "image"), renders(sim.url, "ltx")) == (2, 0)
    folder = out / "test_reel"
    assert (folder / "gates" / "cast.png").is_file()
    assert sorted(p.name for p in (folder / "keyframes").iterdir()) == ["chain0.png", "chain1.png"]
    # The message gives the command that goes on; the terminal may have wrapped it.
    flat = " ".join(said.split())
    found = re.search(r"comes from the cache\): (python -m flows\.film .*?) To redo", flat)
    assert found is not None, said
    words = shlex.split(found.group(1))
    assert "--gates" not in words and words[3] == str(screenplay)
    went_on = subprocess.run(
        [sys.executable, *words[1:]],
        env=env, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert went_on.returncode == 0, went_on.stdout + went_on.stderr
    # Nothing finished was lost: the keyframes came from the cache, only the sequences rendered.
    assert (renders(sim.url, "image"), renders(sim.url, "ltx")) == (2, 2)


@pytest.mark.usefixtures("prefect_api")
def test_a_gate_nobody_answers_ends_the_run_at_its_timeout_and_says_how_to_continue(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    screenplay = write_screenplay(tmp_path, chain_scenes(chains=1, shots=1))
    with pytest.raises(GateStopped) as stopped:
        render(screenplay, tmp_path / "out", [sim.url], gates=["cast"], gate_timeout=2)
    message = str(stopped.value)
    assert message.startswith("The cast gate had no answer within 2 s: the run ends here.")
    assert "Everything finished is kept in" in message
    assert "run the film again without the cast gate" in message
    assert renders(sim.url, "image") == 1 and renders(sim.url, "ltx") == 0


@pytest.mark.usefixtures("prefect_api")
def test_a_cli_gate_on_a_terminal_asks_there_and_redoes_what_it_is_told(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    screenplay = write_screenplay(tmp_path, chain_scenes(chains=1, shots=1))
    command = film_command(screenplay, tmp_path / "out", [sim.url], "--gates", "cast")
    with Terminal(command, harness_environment()) as terminal:
        terminal.wait_for("'stop': end here >")
        assert "cast gate: Test Reel" in terminal.text and "GPU estimate" in terminal.text
        terminal.type("keyframe 0")  # redo, then the gate asks again about the new keyframe
        terminal.wait_for("'stop': end here >", count=2)
        assert renders(sim.url, "image") == 2
        terminal.type("")  # Enter: go on
        assert terminal.exit_code() == 0, terminal.text
    assert (renders(sim.url, "image"), renders(sim.url, "ltx")) == (2, 1)


class Terminal:
    """A command on a pseudo-terminal: what it printed so far, and keys typed into it."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        import pty

        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            command, env={**env, "COLUMNS": "200"}, cwd=REPO, stdin=slave, stdout=slave,
            stderr=slave, close_fds=True,
        )  # fmt: skip
        os.close(slave)
        self.output = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the command ended and closed its side
                return
            if not chunk:
                return
            self.output.extend(chunk)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def wait_for(self, text: str, count: int = 1, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.text.count(text) < count:
            assert self.process.poll() is None, self.text
            assert time.monotonic() < deadline, f"never printed {text!r}:\n{self.text}"
            time.sleep(0.2)

    def type(self, line: str) -> None:
        os.write(self.master, f"{line}\n".encode())

    def exit_code(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


@pytest.mark.usefixtures("prefect_api")
def test_a_final_gate_sends_a_sequence_back_and_the_ledger_counts_the_redo(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    asked: list[GateRequest] = []
    answers = iter(
        [
            GateDecision(),  # takes: go on
            GateDecision(redo_sequences=[1], then="look again"),  # final: send 1 back
            GateDecision(),  # final again: approved
        ]
    )

    async def director(request: GateRequest, timeout: int) -> GateDecision:
        asked.append(request)
        return next(answers)

    screenplay = write_screenplay(tmp_path, chain_scenes(chains=1, shots=2))
    token = gate_answerer.set(director)  # who answers, as the CLI installs its terminal
    try:
        result = render(screenplay, tmp_path / "out", [sim.url], gates=["takes", "final"], takes=2)
    finally:
        gate_answerer.reset(token)

    assert [(r.gate, r.round) for r in asked] == [("takes", 1), ("final", 1), ("final", 2)]
    assert asked[0].estimate.startswith("GPU estimate of what remains: ")
    assert [label for label, _ in asked[1].material] == ["the film"]
    # 1 keyframe, 2 takes of 2 sequences, then sequence 1's 2 takes again; nothing else.
    assert (renders(sim.url, "image"), renders(sim.url, "ltx")) == (1, 6)
    rerolled = plan_screenplay(screenplay, FilmOptions.of(takes=2, rerender=[1]))
    manifest = json.loads((Path(result.folder) / "manifest.json").read_text())
    kept = manifest["sequences"][1]
    assert kept["takes"][0]["seed"] == rerolled.sequences[1].seed  # take 0: its new seed
    cost = manifest["cost"]
    assert [(s["stage"], s["renders"]) for s in cost["stages"]] == [
        ("keyframes", 1),
        ("sequences", 6),
        ("cues", 0),
    ]
    assert cost["spent_s"] == pytest.approx(sum(s["spent_s"] for s in cost["stages"]), abs=0.2)
    assert "GPU estimate beside GPU spent" in (Path(result.folder) / "report.md").read_text()
