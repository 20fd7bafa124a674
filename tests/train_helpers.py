"""Tiny run configs, subprocess helpers and fault injection shared by the training, fault and
workflow tests.

Run as a script, this file is ``vitnqs train RUN_CONFIG RUN_DIR`` with one fault injected:

    python train_helpers.py MOMENT COUNT RUN_CONFIG RUN_DIR

MOMENT is one of ``MOMENTS``: the process stops there (the COUNT-th time it comes), writes
``paused_marker(RUN_DIR)`` and waits for the test to SIGKILL it; or ``nan-local-energy``: the
COUNT-th call of ``MCState.local_estimators`` returns NaN in its first entry; or ``sigterm``
(``sigterm-twice``): the process sends itself SIGTERM (twice) in step COUNT; or
``sigterm-local-energy``: it sends itself SIGTERM in the COUNT-th call of
``MCState.local_estimators`` (VMC_SR calls it once a step, the final energy once a batch); or
``sigterm-finish``: it sends itself SIGTERM as the last step's checkpoint is written, between
the training and the final energy (COUNT unused).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from vitnqs import io

REPO = Path(__file__).resolve().parents[1]

TINY_RUN = dict(
    L=4, J2=0.5, n_layers=1, attention="t5", d_model=8, n_heads=2, seed=3,
    n_steps=24, n_samples=64, n_chains=16, n_discard_per_chain=1, learning_rate=0.02,
    diag_shift=1e-3, n_samples_final=256, checkpoint_every=4, log_every=4,
    sr_on_the_fly=False, protocol="test",
)
"""A run that takes seconds on one CPU core once compiled: 6 checkpoints (steps 4, 8, ..., 24),
10 snapshot writes (steps 0, 1, 2, 3, 4, 6, 8, 12, 17 and the final 24)."""

SUMMARY_NUMBERS = ("energy_per_site", "energy_error", "variance", "v_score", "r_hat", "tau_corr",
                   "n_samples_final", "reference_energy", "relative_error", "n_params")
"""The fields of summary.json that an interrupted run must reproduce (all but timings and
provenance)."""


def write_config(path: Path, **changes) -> Path:
    write_yaml(path, {**TINY_RUN, **changes})
    return path


def write_yaml(path: Path, data) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def train_command(config_path: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "vitnqs.cli", "train", str(config_path), str(run_dir), "--quiet"]


def train_in_subprocess(config_path: Path, run_dir: Path, *options: str
                        ) -> subprocess.CompletedProcess:
    return subprocess.run([*train_command(config_path, run_dir), *options], capture_output=True,
                          text=True, timeout=600, env=_env())


def kill_training_when(config_path: Path, run_dir: Path, ready, timeout: float = 300,
                       command: list[str] | None = None) -> bool:
    """Start training, SIGKILL it as soon as ready(run_dir) holds; False if it finished first."""
    process = subprocess.Popen(command or train_command(config_path, run_dir), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if ready(run_dir):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.01)
    process.wait()
    return False


def run_outcome(run_dir: Path) -> dict:
    """What a resumed run must reproduce bit for bit: every parameter snapshot, the history but
    its seconds, the numbers of the summary."""
    summary = io.read_json(run_dir / "summary.json")
    history = io.read_csv(run_dir / "history.csv", required=("step", "energy"))
    return {
        "snapshots": {p.name: io.read_state(p)
                      for p in sorted((run_dir / "snapshots").glob("step_*.msgpack"))},
        "history": history.drop(columns=["seconds"]).to_dict("list"),
        "summary": {key: summary[key] for key in SUMMARY_NUMBERS},
    }


# --- fault injection ----------------------------------------------------------------------------
WRITES = {"checkpoint": "state.msgpack", "snapshot": "step_", "history": "history.csv",
          "summary": "summary.json", "final_energy": "final_energy.msgpack"}
"""The files a run writes with io.write_atomic, by the name (prefix) of the file."""

MOMENTS = {
    "step": "at the start of step COUNT, before it samples",
    "update": "in step COUNT, after the SR update is computed and before it is applied",
    **{f"{write}-half": f"inside the COUNT-th {write} write, half of the temporary file written"
       for write in WRITES},
    **{f"{write}-unrenamed": f"inside the COUNT-th {write} write, the temporary file complete "
       "and fsynced but not yet renamed" for write in WRITES},
}
"""Where a fault-injected training process stops to be SIGKILLed."""

PAUSE_SECONDS = 120
"""How long a stopped process waits for its SIGKILL before it exits with status 3."""


def paused_marker(run_dir: Path) -> Path:
    """The file a fault-injected process writes beside run_dir when it has stopped."""
    return run_dir.with_name(f"{run_dir.name}.paused")


def fault_command(moment: str, count: int, config_path: Path, run_dir: Path) -> list[str]:
    return [sys.executable, __file__, moment, str(count), str(config_path), str(run_dir)]


def kill_training_at(config_path: Path, run_dir: Path, moment: str, count: int) -> bool:
    """Train in a subprocess that stops at the count-th `moment` (MOMENTS) and SIGKILL it there;
    False if it never came there."""
    marker = paused_marker(run_dir)
    marker.unlink(missing_ok=True)
    return kill_training_when(config_path, run_dir, lambda _: marker.exists(),
                              command=fault_command(moment, count, config_path, run_dir))


def train_with_fault(config_path: Path, run_dir: Path, moment: str,
                     count: int) -> subprocess.CompletedProcess:
    return subprocess.run(fault_command(moment, count, config_path, run_dir), capture_output=True,
                          text=True, timeout=600, env=_env())


def local_estimators_changed_at(original, call: int, change):
    """MCState.local_estimators whose call-th call (from 1) returns change(its result).

    VMC_SR calls it once per step (call k is step k - 1); the final energy estimate of a run
    calls it once per batch, ceil(n_samples_final / n_samples) times after the last step.
    """
    calls = itertools.count(1)

    def local_estimators(self, *args, **kwargs):
        e_loc = original(self, *args, **kwargs)  # a netket LocalEstimators around .data
        return change(e_loc) if next(calls) == call else e_loc

    return local_estimators


def poisoned_local_estimators(original, call: int, value: float):
    """MCState.local_estimators whose call-th call (from 1) gives `value` as its first entry."""
    return local_estimators_changed_at(
        original, call, lambda e_loc: type(e_loc)(e_loc.data.at[(0,) * e_loc.data.ndim].set(value)))


def _sigterm_self(times: int = 1) -> None:
    """Send this process SIGTERM, as a time limit would (twice: a second, impatient one)."""
    for _ in range(times):
        os.kill(os.getpid(), signal.SIGTERM)


def _inject(moment: str, count: int, run_dir: Path) -> None:
    import netket as nk

    from vitnqs.recorder import RunRecorder

    marker = paused_marker(run_dir)

    def pause():
        marker.write_text(moment)
        time.sleep(PAUSE_SECONDS)
        os._exit(3)  # nobody killed this process: the test sees exit status 3

    if moment in ("sigterm", "sigterm-twice"):  # sent by the process itself, mid-step COUNT
        original = RunRecorder.on_compute_update_end

        def signalled(self, step, *args):
            if step == count:
                _sigterm_self(2 if moment == "sigterm-twice" else 1)
            return original(self, step, *args)

        RunRecorder.on_compute_update_end = signalled
    elif moment == "sigterm-local-energy":
        nk.vqs.MCState.local_estimators = local_estimators_changed_at(
            nk.vqs.MCState.local_estimators, count, lambda e_loc: _sigterm_self() or e_loc)
    elif moment == "sigterm-finish":
        finish = RunRecorder.finish

        def signalled_finish(self, driver):
            _sigterm_self()
            return finish(self, driver)

        RunRecorder.finish = signalled_finish
    elif moment == "nan-local-energy":
        nk.vqs.MCState.local_estimators = poisoned_local_estimators(
            nk.vqs.MCState.local_estimators, count, float("nan"))
    elif moment in ("step", "update"):
        hook = "on_step_start" if moment == "step" else "on_compute_update_end"
        original = getattr(RunRecorder, hook)

        def hooked(self, step, *args):
            if step == count:
                pause()
            return original(self, step, *args)

        setattr(RunRecorder, hook, hooked)
    else:
        write, stage = moment.rsplit("-", 1)
        _pause_inside_write(WRITES[write], stage, count, pause)


def _pause_inside_write(prefix: str, stage: str, count: int, pause) -> None:
    """Make the count-th io.write_atomic of a file named prefix* pause in the middle."""
    real_write, real_os = io.write_atomic, io.os
    writes = itertools.count(1)

    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            real_os.fsync(self.handle.fileno())
            pause()

    class PausingOs:  # vitnqs.io's `os` during the chosen write
        def __getattr__(self, name):
            return getattr(real_os, name)

        def fdopen(self, fd, *args):
            handle = real_os.fdopen(fd, *args)
            return HalfWriter(handle) if stage == "half" else handle

        def replace(self, source, destination):
            if stage == "unrenamed":
                pause()
            return real_os.replace(source, destination)

    def write_atomic(path, data):
        if Path(path).name.startswith(prefix) and next(writes) == count:
            io.os = PausingOs()
        return real_write(path, data)

    io.write_atomic = write_atomic


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --- workflow trees -----------------------------------------------------------------------------
TINY_QUICK = {"protocols": {"quick": {"n_steps": 60, "n_samples": 64, "n_chains": 16,
                                      "n_samples_final": 128, "checkpoint_every": 4}}}
"""config/quick.yaml's protocol shrunk: 60 steps of M = 64, a checkpoint every 4 steps."""
TINY_QUICK_RUN = "L4_J0.5_nl1_t5_s0_quick"
"""A run of the quick grid under TINY_QUICK: seconds on one CPU core once compiled."""


def workflow_tree(destination: Path) -> tuple[Path, list[str]]:
    """A copy of the repository and the config files that shrink config/quick.yaml to
    TINY_QUICK (for Snakemake's --configfile)."""
    tree = copy_tree(destination)
    return tree, ["config/quick.yaml", write_yaml(tree / "tiny.yaml", TINY_QUICK)]


def copy_tree(destination: Path) -> Path:
    """The files a commit of the working tree would hold, copied to destination."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listing):
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    return destination


def snakemake(cwd: Path, *args: str, configs: list[str] = (),
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run Snakemake in cwd with extra config files (and another environment than this
    process's); stdout and stderr together in .stdout."""
    return subprocess.run(snakemake_command(*args, configs=configs), cwd=cwd, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def snakemake_command(*args: str, configs: list[str] = ()) -> list[str]:
    configfiles = ["--configfile", *configs] if configs else []
    return [sys.executable, "-m", "snakemake", *args, *configfiles]


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a run ({} when nothing is to be done)."""
    if "Job stats:" not in output:
        return {}
    jobs = {}
    for line in output.split("Job stats:", 1)[1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def tree_state(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """SHA-256 of every file under folder, by relative path (top-level folders in skip aside)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] not in skip}


if __name__ == "__main__":
    MOMENT, COUNT, CONFIG, RUN_DIR = sys.argv[1:]
    from vitnqs import cli, gpus

    os.environ.setdefault("XLA_FLAGS", gpus.GPU_XLA_FLAGS)  # as `vitnqs train` sets it
    _inject(MOMENT, int(COUNT), Path(RUN_DIR))
    sys.exit(cli.main(["train", CONFIG, RUN_DIR, "--quiet"]))
