"""The console of a study: its lines, and the heartbeat that says what the study is doing
when nothing else printed for a while."""

from __future__ import annotations

import threading

from imbtrain.study.console import Console


def wait_for_lines(capsys, console: Console, n: int) -> list[str]:
    """Block until the heartbeat thread printed `n` lines (an event, not a clock)."""
    seen: list[str] = []
    done = threading.Event()
    say = console.say

    def counting(line, err=False):
        say(line, err)
        seen.append(line)
        if len(seen) >= n:
            done.set()

    console.say = counting
    assert done.wait(60), seen
    return seen


def test_the_heartbeat_says_the_step_then_the_status(capsys):
    console = Console(heartbeat_s=0.05)
    with console.active():
        console.step("starting Ray")
        lines = wait_for_lines(capsys, console, 2)
        assert all(line.startswith("... starting Ray (") and line.endswith(" s)")
                   for line in lines)
        console.status(lambda: "1/8 done; running: digits_r1_bs32_s0 (epoch 1/3 done, 4 s)")
        lines = wait_for_lines(capsys, console, 1)
        assert lines == ["... 1/8 done; running: digits_r1_bs32_s0 (epoch 1/3 done, 4 s)"]
    out = capsys.readouterr().out
    assert "... starting Ray (" in out and "running: digits_r1_bs32_s0" in out


def test_lines_are_flushed_and_a_step_clears_the_status(capsys):
    console = Console(heartbeat_s=3600)
    console.say("study x: 8 trials")
    console.say("warning", err=True)
    captured = capsys.readouterr()
    assert captured.out == "study x: 8 trials\n" and captured.err == "warning\n"
    with console.active():
        console.status(lambda: "running")
        assert console.heartbeat_line() == "... running"
        console.step("writing the result tables")
        assert console.heartbeat_line().startswith("... writing the result tables (")


def test_nested_blocks_share_one_heartbeat():
    console = Console(heartbeat_s=3600)
    before = set(threading.enumerate())  # another console's thread may still be ending
    with console.active(), console.active():
        beats = [t for t in threading.enumerate() if t.name == "imbtrain-heartbeat"
                 and t not in before]
        assert len(beats) == 1
