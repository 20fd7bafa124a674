"""SLURM's commands as one machine's stand-in, to run the SLURM profile end to end without a
cluster: sbatch starts each job here at once, sacct and squeue report its state, srun runs the
step's command, scancel ends a job, scontrol, sinfo and sacctmgr answer what the executor plugin
asks.

    install(bin_dir, state_dir)  # one executable per command in bin_dir: put it first on PATH

state_dir holds ``jobs/<id>.json`` (name, comment, argv, state, exit code) and ``sbatch.jsonl``,
one line per submission with its argv. A time limit is simulated by the environment variable
``FAKE_SLURM_TIME_LIMIT = "RULE:FILE"``: the first job of rule RULE (the plugin names the rule in
the job's --comment) gets SIGTERM, as SLURM sends it at the time limit, once FILE (relative to
the job's working directory) exists, then SIGKILL after ``KILL_WAIT_SECONDS`` if it has not
ended; its state is TIMEOUT, as sacct then reports it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ("sbatch", "sacct", "squeue", "scancel", "srun", "scontrol", "sinfo", "sacctmgr")
ACCOUNT = "physics"
"""The one SLURM account of this user, as sacctmgr lists it."""
STATE_VARIABLE = "FAKE_SLURM_STATE"
TIME_LIMIT_VARIABLE = "FAKE_SLURM_TIME_LIMIT"
KILL_WAIT_SECONDS = 30
"""SLURM's KillWait default: the time between the time limit's SIGTERM and its SIGKILL."""


def install(bin_dir: Path, state_dir: Path) -> None:
    """Write the commands into bin_dir, each running this file with the state folder set."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "jobs").mkdir(parents=True, exist_ok=True)
    for command in COMMANDS:
        script = bin_dir / command
        script.write_text(f'#!/bin/sh\n{STATE_VARIABLE}="{state_dir}" '
                          f'exec "{sys.executable}" "{__file__}" {command} "$@"\n')
        script.chmod(0o755)


def submissions(state_dir: Path) -> list[list[str]]:
    """The argv of every sbatch call, in order."""
    log = state_dir / "sbatch.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def jobs(state_dir: Path) -> list[dict]:
    """Every job's record, by job id."""
    return [json.loads(p.read_text())
            for p in sorted((state_dir / "jobs").glob("*.json"), key=lambda p: int(p.stem))]


# --- the commands --------------------------------------------------------------------------------
def sbatch(argv: list[str], state: Path) -> None:
    with open(state / "sbatch.jsonl", "a") as log:
        log.write(json.dumps(argv) + "\n")
    options = _options(argv)
    job_id = len(list((state / "jobs").glob("*.json"))) + 1
    command = options.get("--wrap")
    if command is None:  # the script is the last argument, /dev/stdin when piped
        command = Path(argv[-1]).read_text() if argv[-1] != "/dev/stdin" else sys.stdin.read()
    workdir = options.get("-D", os.getcwd())
    comment = options.get("--comment", "")
    limit = os.environ.get(TIME_LIMIT_VARIABLE, "")
    rule, _, trigger = limit.partition(":")
    limited = bool(rule) and f"rule_{rule}" in comment and not any(
        job.get("time_limit_file") for job in jobs(state))
    _write_job(state, {
        "id": job_id, "name": options.get("--job-name", ""), "comment": comment, "argv": argv,
        "command": command, "workdir": workdir, "state": "PENDING", "exit_code": None,
        "output": options.get("--output", "slurm-%j.out").replace("%j", str(job_id)),
        "time_limit_file": trigger if limited else None,
    })
    subprocess.Popen([sys.executable, __file__, "_run", str(job_id)], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, env={**os.environ, STATE_VARIABLE: str(state)})
    print(job_id)


def squeue(argv: list[str], state: Path) -> None:
    """'ID|STATE' of each job named --name (the plugin's query, sacct's too)."""
    name = _options(argv).get("--name")
    for job in jobs(state):
        if name is None or job["name"] == name:
            print(f"{job['id']}|{job['state']}")


def sacct(argv: list[str], state: Path) -> None:
    if "Account" in _options(argv).get("-o", ""):  # the plugin guesses the account from past jobs
        print(ACCOUNT)
    else:
        squeue(argv, state)


def scancel(argv: list[str], state: Path) -> None:
    for job_id in (a for a in argv if a.isdigit()):
        job = _read_job(state, int(job_id))
        if job.get("pid") and job["state"] in ("PENDING", "RUNNING"):
            _signal_group(job["pid"], signal.SIGKILL)
            job["state"] = "CANCELLED"
            _write_job(state, job)


def srun(argv: list[str], state: Path) -> None:
    """The job step: run the command after srun's options (each option one word)."""
    command = list(argv)
    while command and command[0].startswith("-"):
        command.pop(0)
    os.execvp(command[0], command)


def scontrol(argv: list[str], state: Path) -> None:
    if argv[:2] == ["show", "config"]:
        print("MinJobAge               = 300 sec")


def sinfo(argv: list[str], state: Path) -> None:
    print("PARTITION\ngpu")


def sacctmgr(argv: list[str], state: Path) -> None:
    print(ACCOUNT)


def run_job(job_id: int, state: Path) -> None:
    """The job itself (sbatch starts it detached): its command in its own process group, with
    the time limit's signals if it has one."""
    job = _read_job(state, job_id)
    output = Path(job["workdir"], job["output"])
    output.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SLURM_JOB_ID": str(job_id), "SLURM_JOB_NAME": job["name"]}
    env.pop(STATE_VARIABLE)
    with open(output, "a") as log:
        process = subprocess.Popen(["/bin/sh", "-c", job["command"]], cwd=job["workdir"],
                                   stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    job.update(state="RUNNING", pid=process.pid)
    _write_job(state, job)
    timed_out = False
    trigger = job["time_limit_file"] and Path(job["workdir"], job["time_limit_file"])
    while process.poll() is None:
        if trigger and not timed_out and trigger.exists():
            timed_out = True
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=KILL_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
        time.sleep(0.05)
    job = _read_job(state, job_id)
    if job["state"] != "CANCELLED":
        job["state"] = "TIMEOUT" if timed_out else (
            "COMPLETED" if process.returncode == 0 else "FAILED")
    job["exit_code"] = process.returncode
    _write_job(state, job)


# --- helpers ------------------------------------------------------------------------------------
def _options(argv: list[str]) -> dict[str, str]:
    """'--key value', '--key=value' and '-k value' pairs of argv (flags without a value: '')."""
    options, words = {}, list(argv)
    while words:
        word = words.pop(0)
        if not word.startswith("-"):
            continue
        key, equals, value = word.partition("=")
        if not equals:
            value = words.pop(0) if words and not words[0].startswith("-") else ""
        options[key] = value
    return options


def _signal_group(pid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def _read_job(state: Path, job_id: int) -> dict:
    return json.loads((state / "jobs" / f"{job_id}.json").read_text())


def _write_job(state: Path, job: dict) -> None:
    path = state / "jobs" / f"{job['id']}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(job))
    os.replace(temporary, path)


if __name__ == "__main__":
    state_dir = Path(os.environ[STATE_VARIABLE])
    if sys.argv[1] == "_run":
        run_job(int(sys.argv[2]), state_dir)
    else:
        globals()[sys.argv[1]](sys.argv[2:], state_dir)
