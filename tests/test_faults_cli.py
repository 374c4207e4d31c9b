"""What the command line says and exits with when a run cannot finish, and on a normal run
that re-renders: one true line per problem, a documented exit code, never a traceback.

Servers, stores and disks fail for real here: a port nothing listens on, an S3 server
without the bucket, a tmpfs that fills up, a Ctrl-C.
"""

from __future__ import annotations

import asyncio
import errno
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prefect.states import Failed

from flows.cli import exit_code_of
from sim.embedded import RunningSimulator, free_loopback_port, start_simulator
from sim.settings import Faults, SimSettings
from tasks.chain_stops import FilmFailed
from tasks.comfyui.client import ComfyUIClient
from tasks.comfyui.downloads import download_output
from tasks.comfyui.errors import PreflightFailed, ServerDown, ServerError, ServerUnreachable
from tasks.comfyui.protocol import OutputFile
from tasks.errors import (
    DiskFull,
    MediaCorrupt,
    ReelflowError,
    ScreenplayError,
    StoreUnreachable,
)
from tasks.runtime.caching import retry_if_transient
from tests.fault_helpers import small_tmpfs, wait_until
from tests.film_helpers import (
    film_command,
    harness_environment,
    sim_stats,
    write_screenplay,
)
from tests.s3_helpers import moto_server

pytestmark = pytest.mark.usefixtures("prefect_api")

REPO = Path(__file__).resolve().parents[1]


def shots(tmp_path: Path, count: int) -> Path:
    scenes = [
        {"description": f"Shot {n}: a ferry docks.", "duration": 2.0, "relay_break": n > 0}
        for n in range(count)
    ]
    return write_screenplay(tmp_path, scenes)


def cli(
    command: list[str], *, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        env={**harness_environment(), "COLUMNS": "300", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_exit_codes_name_what_to_fix_first() -> None:
    no_space = OSError(errno.ENOSPC, "No space left on device")
    cases = {
        0: None,
        1: ReelflowError("could not"),
        2: ScreenplayError("film.json", []),
        3: PreflightFailed(["node X is missing"]),
        4: StoreUnreachable("bucket gone"),
        5: ServerUnreachable("down"),
        6: DiskFull("full"),
        7: MediaCorrupt("damaged"),
    }
    for code, error in cases.items():
        if error is not None:
            assert exit_code_of(error) == code, error
    assert exit_code_of(no_space) == 6
    mixed = FilmFailed("2 chains failed", causes=[ServerUnreachable("x"), MediaCorrupt("y")])
    assert exit_code_of(mixed) == 7
    assert exit_code_of(FilmFailed("1 chain failed", causes=[ValueError("bug")])) == 1
    readme = (REPO / "README.md").read_text()
    line = re.search(r"Exit codes:(.+?)\n\n", readme, re.S)
    assert line is not None
    for words in ("0 done", "1 render failed", "2 bad screenplay", "3 preflight", "4 storage"):
        assert words in " ".join(line.group(1).split()), words
    for words in ("5 server", "6 disk full", "7 store corrupt", "130 interrupted"):
        assert words in " ".join(line.group(1).split()), words


def test_an_unreachable_server_is_waited_for_then_named_with_exit_5(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_loopback_port()}"
    started = time.monotonic()
    run = cli(
        film_command(shots(tmp_path, 1), tmp_path, [nobody], "--no-dialogue-check"),
        REELFLOW_SERVER_WAIT_S="4",
    )
    took = time.monotonic() - started
    output = run.stdout + run.stderr
    assert run.returncode == 5, output
    assert f"ComfyUI server {nobody} is unreachable" in run.stderr, output
    assert "REELFLOW_SERVER_WAIT_S" in run.stderr
    assert "Traceback" not in output
    assert took >= 4


def test_a_server_waited_out_is_not_retried_again_by_prefect() -> None:
    """The client's wait is the retry: a task retry would wait the whole window again."""
    waited_out = ServerDown("ComfyUI server http://gpu:8188 is unreachable; tried for 300 s")
    assert not retry_if_transient(None, None, Failed(data=waited_out))  # type: ignore[arg-type]
    assert retry_if_transient(None, None, Failed(data=ServerUnreachable("hung up")))  # type: ignore[arg-type]


def test_a_server_error_names_the_server(tmp_path: Path) -> None:
    settings = SimSettings(faults=Faults(fail_submit_status=503, fail_submit_count=1))

    async def submit(url: str) -> None:
        async with ComfyUIClient(url) as client:
            await client.submit({})

    with (
        start_simulator(settings, workdir=tmp_path / "sim") as sim,
        pytest.raises(ServerError) as failed,
    ):
        asyncio.run(submit(sim.url))
    assert f"POST {sim.url}/prompt: server error 503" in str(failed.value)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSimulator]:
    with start_simulator(
        SimSettings(gpu_seconds_per_output_second=1.0), workdir=tmp_path / "sim"
    ) as running:
        yield running


def test_a_missing_bucket_is_found_before_any_gpu_work(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    with moto_server() as port:
        run = cli(
            film_command(
                shots(tmp_path, 1),
                tmp_path,
                [sim.url],
                "--no-dialogue-check",
                "--store",
                "s3://nobucket/studio",
            ),
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            REELFLOW_STORE_RETRY_S="1",
        )
    output = run.stdout + run.stderr
    assert run.returncode == 4, output
    assert "s3://nobucket/studio" in run.stderr, output
    assert "S3Bucket(" not in output and "Traceback" not in output, output
    assert sim_stats(sim.url)["prompts_submitted"] == 0


def test_ctrl_c_ends_with_how_to_continue(tmp_path: Path, sim: RunningSimulator) -> None:
    process = subprocess.Popen(
        film_command(shots(tmp_path, 2), tmp_path, [sim.url], "--no-dialogue-check"),
        env={**harness_environment(), "COLUMNS": "300"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: sim_stats(sim.url)["prompts_executed"] >= 1, 120, "a render to start")
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    assert "run the same command again to continue" in stderr, stdout + stderr
    assert "Traceback" not in stdout + stderr


def test_a_rerender_reads_as_what_happened(tmp_path: Path) -> None:
    """A re-render withdraws the render-ahead (not a "crash"), a kept attempt reads as the
    review page says it, and the prompt count includes every prompt the GPU was given."""
    never_fits = " ".join(["the tide keeps turning under the old grey harbour wall"] * 6)
    scenes = [
        {
            "description": "Ana stands on the pier at dusk.",
            "duration": 2.0,
            "characters": ["ANA"],
            "dialogue": [
                {"character": "ANA", "line": "The harbour lights are going out one by one tonight."}
            ],
        },
        # Long enough to be still on the GPU when the line before it is judged.
        {"description": "Gulls over the quay.", "duration": 8.0, "relay_break": True},
        {
            "description": "Ana talks on and on.",
            "duration": 2.0,
            "characters": ["ANA"],
            "relay_break": True,
            "dialogue": [{"character": "ANA", "line": never_fits}],
        },
    ]
    screenplay = write_screenplay(tmp_path, scenes)
    # 8 GPU seconds for sequence 1: still rendering ahead while sequence 0 is heard.
    with start_simulator(
        SimSettings(gpu_seconds_per_output_second=1.0), workdir=tmp_path / "sim"
    ) as sim:
        run = cli(film_command(screenplay, tmp_path, [sim.url]), PREFECT_LOGGING_LEVEL="INFO")
        submitted = sim_stats(sim.url)["prompts_submitted"]
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Crash detected" not in output and "Crashed" not in output, output
    assert "withdrawn: sequence 0 is rendered again" in output, output
    cut = [line for line in run.stdout.splitlines() if re.match(r"│ 0\s+│ 1\s+│ ANA", line)]
    assert cut and "rerender" in cut[0], run.stdout
    kept = [line for line in run.stdout.splitlines() if re.match(r"│ 2\s+│ \d+\s+│ ANA", line)]
    assert kept and "rerender" not in kept[-1], kept
    review = (tmp_path / "test_reel" / "review.html").read_text()
    said = re.search(r"(re-render asked, attempts used up|kept with a warning)", kept[-1])
    assert said is not None and said.group(1) in review, kept[-1]
    done = re.search(r"; (\d+) prompts,", run.stdout)
    assert done is not None and int(done.group(1)) == submitted, (done, submitted)


def fill(folder: Path) -> None:
    """Write zeros into `folder` until its disk is full."""
    with (folder / "filler").open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as full:
            assert full.errno == errno.ENOSPC


def test_a_full_disk_stops_with_one_line_naming_it_and_true_counts(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    screenplay = shots(tmp_path, 3)
    with small_tmpfs(tmp_path / "out", size_kib=16384) as out:
        if out is None:
            pytest.skip("mounting a tmpfs needs privileges this machine does not grant")
        # The store (renders and their result records) on a roomy disk; the film folder and
        # the scratch where downloads and encodes land on the small one.
        command = film_command(
            screenplay,
            out,
            [sim.url],
            "--no-dialogue-check",
            "--keyframes",
            "t2v",
            "--store",
            str(tmp_path / "store"),
        )
        process = subprocess.Popen(
            command,
            env={**harness_environment(), "COLUMNS": "300"},
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(
            lambda: any(e["outputs"] for e in sim_stats(sim.url)["executions"]),
            120,
            "a first finished render",
        )
        fill(out)
        stdout, stderr = process.communicate(timeout=240)
        before = sim_stats(sim.url)["prompts_submitted"]
        (out / "filler").unlink()
        again = cli(command)
        rerun_prompts = sim_stats(sim.url)["prompts_submitted"] - before
    output = stdout + stderr
    assert process.returncode == 6, output
    assert "Traceback" not in output, output
    report = stderr[stderr.index("error: ") :]
    assert "Errno 28" not in report, report
    first = report.splitlines()[0]
    assert first.startswith("error: the disk holding") and f"(mounted at {out})" in first, first
    assert " free; this film needs about " in first, first
    counted = re.search(r"(\d+) of 3 sequences rendered", stderr)
    assert counted is not None, stderr
    picked_up = again.stdout.count("picked up the prompt")
    assert again.returncode == 0, again.stdout + again.stderr
    # Sequences counted as rendered cost nothing again; the rest are rendered or picked up.
    assert int(counted.group(1)) + rerun_prompts + picked_up == 3, (counted, rerun_prompts)


def test_a_download_onto_a_full_disk_is_a_disk_full_error_naming_its_disk(tmp_path: Path) -> None:
    body = b"\x00" * 256 * 1024
    server = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    output = OutputFile(filename="clip.mp4", subfolder="", type="output")

    async def download(folder: Path) -> Path:
        async with httpx.AsyncClient(transport=server, base_url="http://gpu-box:8188") as http:
            return await download_output(http, "http://gpu-box:8188", output, folder)

    with small_tmpfs(tmp_path / "small", size_kib=128) as small:
        if small is None:
            pytest.skip("mounting a tmpfs needs privileges this machine does not grant")
        with pytest.raises(DiskFull) as caught:
            asyncio.run(download(small))
        assert f"(mounted at {small})" in str(caught.value) and "Errno" not in str(caught.value)
        assert list(small.iterdir()) == []  # the partial download is removed
