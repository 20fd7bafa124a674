"""Training segments: which device and commit trained which steps of a run resumed across
machines, from segments.csv or, for runs begun before it existed, from train.log."""

import pandas as pd
import pytest

from vitnqs import io, segments

H100 = "NVIDIA H100 80GB HBM3 x1"
H100_PAIR = "NVIDIA H100 80GB HBM3 x2"
COMMIT = "4a085ebc57464dca8931ff9c30f50b3b105b1201"

LOG = f"""\
2026-11-26 09:36:52 memory plan: chunk 6000
2026-11-26 09:36:52 L6_x: starting steps 0..4999 of 5000, M=6000, 184260 parameters, device {H100}
2026-11-26 09:40:00 step 10/5000  E = -0.1 +- 1e-3  acc 0.14  1.6 s/step  ETA 2h
2026-11-26 12:15:10 restored checkpoint results/runs/L6_x/checkpoint/state.msgpack at step 668
2026-11-26 12:15:10 L6_x: resuming steps 668..4999 of 5000, M=6000, 184260 parameters, device {H100_PAIR}, commit {COMMIT}
"""


def rows(*segments_):
    return pd.DataFrame([{"first_step": first, "device": device, "git_commit": "", "host": "",
                          "started_at": "", "source": "recorded"} for first, device in segments_],
                        columns=list(segments.COLUMNS))


def test_log_lines_with_and_without_a_commit_give_one_row_each():
    parsed = segments.from_log(LOG)
    assert list(parsed.first_step) == [0, 668]
    assert list(parsed.device) == [H100, H100_PAIR]
    assert list(parsed.git_commit) == ["", COMMIT]
    assert set(parsed.source) == {"train.log"}


def test_a_log_line_of_a_shared_gpu_keeps_the_sharing_in_its_device():
    shared = "NVIDIA H200 x1 shared by 2 runs"
    parsed = segments.from_log(LOG.replace(H100_PAIR, shared))
    assert list(parsed.device) == [H100, shared]
    assert list(parsed.git_commit) == ["", COMMIT]


def test_a_segment_ends_where_the_next_begins_and_the_compiling_step_is_left_out():
    seconds = pd.Series([30.0, 1.0, 1.0, 1.0, 20.0, 2.0, 2.0], index=range(7))
    records = segments.summarize(rows((0, H100), (4, H100_PAIR)), seconds, n_steps=7)
    assert [(r["first_step"], r["last_step"], r["n_steps"]) for r in records] == [
        (0, 3, 4), (4, 6, 3)]
    assert [r["seconds_per_step"] for r in records] == [1.0, 2.0]
    assert segments.describe_devices(records) == f"{H100} (4 steps); {H100_PAIR} (3 steps)"
    assert segments.step_seconds_by_device(records, seconds) == {H100: 1.0, H100_PAIR: 2.0}


def test_step_times_by_device_pool_the_segments_of_each_device():
    """Two segments on one card (steps 1-3 at 1 s, 7-8 at 3 s: median 1) around one on two."""
    seconds = pd.Series([30.0, 1.0, 1.0, 1.0, 20.0, 2.0, 9.0, 3.0, 3.0], index=range(9))
    records = segments.summarize(rows((0, H100), (4, H100_PAIR), (6, H100)), seconds, n_steps=9)
    assert [r["seconds_per_step"] for r in records] == [1.0, 2.0, 3.0]
    assert segments.step_seconds_by_device(records, seconds) == {H100: 1.0, H100_PAIR: 2.0}


def test_killed_and_restarted_segments_keep_only_the_steps_the_run_kept():
    seconds = pd.Series(1.0, index=range(10))
    # a process killed before its first checkpoint (two starts at step 4), then a restart from
    # scratch (the checkpoint deleted): only the last start at 0 and what followed it count
    history = rows((0, H100), (4, H100), (4, H100_PAIR), (0, H100_PAIR), (6, H100))
    records = segments.summarize(history, seconds, n_steps=10)
    assert [(r["first_step"], r["last_step"], r["device"]) for r in records] == [
        (0, 5, H100_PAIR), (6, 9, H100)]
    assert segments.describe_devices(records[1:]) == H100


def test_segments_csv_survives_a_round_trip_and_a_damaged_one_is_named(tmp_path):
    segments.record_start(tmp_path, 0, H100, COMMIT)
    segments.record_start(tmp_path, 50, H100_PAIR, "unknown")
    read = segments.read(tmp_path)
    assert list(read.first_step) == [0, 50] and list(read.device) == [H100, H100_PAIR]
    assert list(read.git_commit) == [COMMIT, "unknown"] and set(read.source) == {"recorded"}
    (tmp_path / segments.FILE).write_text("first_step,device\n0,x\n")
    with pytest.raises(io.CorruptFileError, match="source"):
        segments.read(tmp_path)


def test_a_run_begun_before_segments_csv_gets_its_rows_from_train_log_once(tmp_path):
    (tmp_path / "train.log").write_text(LOG)
    segments.record_start(tmp_path, 900, H100, COMMIT)
    read = segments.read(tmp_path)
    assert list(read.first_step) == [0, 668, 900]
    assert list(read.source) == ["train.log", "train.log", "recorded"]
