"""A single-node Slurm cluster on this machine, for as long as a test needs it: munged, slurmctld and slurmd.

Debian's `slurm-wlm` and `munge` (`apt-get install slurm-wlm munge`, as .ci/run does), started directly
(no systemd), every file in one folder, talking only to 127.0.0.1 on ports free at the time. The
commands that submit jobs find the cluster through the SLURM_CONF variable this returns.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scancel")
STARTUP_S = 30


class ClusterUnavailable(Exception):
    """The daemons are missing or did not start; the message says why."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


def slurm_conf(folder: Path) -> str:
    return f"""\
ClusterName=mnistcnn
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser={os.environ.get("USER", "root")}
AuthType=auth/munge
AuthInfo=socket={folder / "munge.socket"}
CredType=cred/munge
StateSaveLocation={folder / "state"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={folder / "slurmctld.pid"}
SlurmdPidFile={folder / "slurmd.pid"}
SlurmctldLogFile={folder / "slurmctld.log"}
SlurmdLogFile={folder / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory_mb() // 2} State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def daemon(stack: ExitStack, folder: Path, *command: str) -> subprocess.Popen:
    """Start a daemon in the foreground, logging to <folder>/<name>.out; stopped when the stack closes."""
    log = stack.enter_context((folder / f"{Path(command[0]).name}.out").open("w"))
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    stack.callback(stop, process)
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_socket(socket_path: Path, munged: subprocess.Popen, folder: Path) -> None:
    """Slurm authenticates every message through munged's socket, so it must be there first."""
    deadline = time.monotonic() + STARTUP_S
    while not socket_path.exists():
        if munged.poll() is not None or time.monotonic() > deadline:
            raise ClusterUnavailable(f"munged did not start: {last_line(folder, 'munged')}")
        time.sleep(0.1)


def wait_until_idle(env: dict[str, str], daemons: list[subprocess.Popen], folder: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        stopped = [process for process in daemons if process.poll() is not None]
        if stopped:
            raise ClusterUnavailable(f"{stopped[0].args[0]} exited: {last_line(folder, stopped[0].args[0])}")
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
        if state.stdout.strip() == "idle":
            return
        time.sleep(0.5)
    raise ClusterUnavailable(f"the node never became idle in {STARTUP_S} s: {last_line(folder, 'slurmd')}")


def last_line(folder: Path, command: str) -> str:
    lines = [line for line in (folder / f"{Path(command).name}.out").read_text().splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing logged)"


def drain(env: dict[str, str]) -> None:
    """Let the cluster's jobs finish (a job's result file comes before its end), cancel any left."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True)
        if queue.returncode != 0 or not queue.stdout.strip():
            return
        time.sleep(0.5)
    subprocess.run(["scancel", "--user", str(os.getuid())], env=env, capture_output=True)
    time.sleep(2)


@contextmanager
def local_slurm(folder: Path) -> Iterator[dict[str, str]]:
    """Bring the cluster up in `folder`, yield the environment that reaches it, take it down afterwards."""
    missing = [name for name in DAEMONS if not shutil.which(name)]
    if missing:
        raise ClusterUnavailable(f"{', '.join(missing)} not found: apt-get install slurm-wlm munge")
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True)
    folder.chmod(0o755)  # munged refuses a socket folder others cannot reach
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    with ExitStack() as stack:
        munge = [f"--socket={folder / 'munge.socket'}", f"--key-file={key}", f"--pid-file={folder / 'munged.pid'}"]
        started = [daemon(stack, folder, "munged", "--foreground", "--force", *munge, f"--seed-file={folder / 'seed'}")]
        wait_for_socket(folder / "munge.socket", started[0], folder)
        started.append(daemon(stack, folder, "slurmctld", "-D", "-i", "-f", str(conf)))
        started.append(daemon(stack, folder, "slurmd", "-D", "-N", "localhost", "-f", str(conf)))
        wait_until_idle(env, started, folder)
        stack.callback(drain, env)  # before the daemons stop: a job step cut off from slurmd never ends
        yield env
