"""aarch64 check: run the core library on an emulated ARM CPU and compare it with the x86_64 run.

    make check-arm                    # or: .venv/bin/python tools/check_arm.py [--frames N] [--cpu MODEL]

Builds an aarch64 environment from the package registries only and caches it outside the work
tree (``$LITEPOSE_ARM_CACHE``, default ``~/.cache/litepose_arm``):

- a Debian 12 arm64 root file system with Python 3.11 (``debootstrap --foreign``; the packages
  are unpacked with ``dpkg-deb -x``, so no chroot and no binfmt_misc are needed);
- the aarch64 wheels of requirements/runtime.txt (numpy, opencv-python-headless, onnxruntime,
  scipy) from PyPI, installed from this host with ``pip install --target --platform``.

The frames of the bundled sample bag are decoded once on this host; tools/arm_parity_worker.py
then runs ``Estimator`` (ONNX Runtime CPU, the bundled model) on the same pixels twice: with this
project's x86_64 interpreter and with the aarch64 interpreter under ``qemu-aarch64-static``. Each
side then also decodes the other side's network outputs, which separates the network's rounding
differences from the decoding code's. docs/benchmarks/arm.md gets the comparison. Exit status 0
when the network outputs agree within tolerance, the decoding code gives identical people from
identical outputs, and the people agree with the reference grouping cost (the page explains why
the default decoder's tie-break is reported but not required to agree).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from litepose_ros.bags import IMAGE_TYPES, BagReader, decode_bag_image  # noqa: E402
from litepose_ros.samples import SAMPLES_DIR  # noqa: E402

WORKER = PROJECT_DIR / "tools" / "arm_parity_worker.py"
RUNTIME_REQUIREMENTS = PROJECT_DIR / "requirements" / "runtime.txt"
SAMPLE_BAG = SAMPLES_DIR / "vtest_sample.mcap"
DEFAULT_PAGE = PROJECT_DIR / "docs" / "benchmarks" / "arm.md"
DEFAULT_CACHE = Path(os.environ.get("LITEPOSE_ARM_CACHE", "~/.cache/litepose_arm")).expanduser()

DEBIAN_SUITE = "bookworm"  # Debian 12, Python 3.11: the same CPython minor version as the cp311 wheels
PYTHON_VERSION = "3.11"
# Wheel platform tags an aarch64 Debian 12 (glibc 2.36) accepts. pip does not widen a --platform
# tag to the older manylinux versions by itself, so all are named.
WHEEL_PLATFORMS = ["manylinux2014_aarch64"] + [f"manylinux_2_{minor}_aarch64" for minor in range(17, 37)]

# qemu-user 7.2 passes the host's /proc/cpuinfo (an x86 one) through to the guest, and ONNX
# Runtime's CPU detection (cpuinfo) crashes on it with a segmentation fault while importing. The
# root file system therefore carries an aarch64 /proc/cpuinfo for the emulated CPU model (qemu's
# -L prefix is searched before the host's files). Values: each model's MIDR as qemu reports it.
CPU_MODELS = {
    "cortex-a57": {
        "variant": "0x1",
        "part": "0xd07",
        "revision": "0",
        "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid",
        "about": "Armv8.0, the CPU of the Jetson Nano / TX1 / TX2",
    },
    "cortex-a72": {
        "variant": "0x0",
        "part": "0xd08",
        "revision": "3",
        "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid",
        "about": "Armv8.0, the CPU of the Raspberry Pi 4",
    },
    "cortex-a76": {
        "variant": "0x4",
        "part": "0xd0b",
        "revision": "1",
        "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
        "asimdrdm lrcpc dcpop asimddp ssbs",
        "about": "Armv8.2 with FP16 and dot product, the nearest model qemu 7.2 has to the "
        "Cortex-A78AE of the Jetson Orin series",
    },
    "neoverse-n1": {
        "variant": "0x4",
        "part": "0xd0c",
        "revision": "1",
        "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
        "asimdrdm lrcpc dcpop asimddp ssbs",
        "about": "Armv8.2, ARM servers (AWS Graviton2, Ampere Altra)",
    },
}
DEFAULT_CPU = "cortex-a76"

# Parity tolerances: float rounding moves keypoints by far less than a pixel and scores by far less
# than these, as long as the decoder makes the same discrete choices (see the page for when not).
KEYPOINT_TOLERANCE_PX = 0.05
SCORE_TOLERANCE = 1e-4
OUTPUT_TOLERANCE = 1e-5  # network outputs (heatmaps, tags), absolute
# Decoding identical outputs must give identical people (up to float printing).
EXACT_PX = 1e-4
EXACT_SCORE = 1e-6
# The decoder variants the worker runs (tools/arm_parity_worker.py DECODER_VARIANTS).
DECODER_VARIANTS = ("default", "tie0")
# The x86-only sensitivity probe: noise of about the size of the two CPUs' output differences.
NOISE_SIGMA = 5e-7
NOISE_SEEDS = 3
# Frames checked by default: every third of the bag's 48 (about 14 s each under emulation here).
DEFAULT_FRAMES = 16
# The x86 SIMD levels worth naming on the page (numpy lists every sub-feature).
X86_SIMD_LEVELS = ("SSE42", "AVX", "AVX2", "FMA3", "AVX512F", "AVX512_SKX", "AVX512_ICL", "AVX512_SPR")


class CheckError(RuntimeError):
    """A step of the check failed; the message says which and what to do."""


def log(message: str) -> None:
    print(f"[check-arm] {message}", flush=True)


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; CheckError with its output's tail when it fails."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise CheckError(f"{Path(str(command[0])).name} failed (exit {result.returncode}):\n{tail}")
    return result


# --- host tools ----------------------------------------------------------------------------------


def ensure_host_tools() -> None:
    """qemu-aarch64-static and debootstrap from Debian's packages (installed when missing and root)."""
    missing = [tool for tool in ("qemu-aarch64-static", "debootstrap", "dpkg-deb") if not shutil.which(tool)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise CheckError(
            f"{', '.join(missing)} not found: install Debian's packages with "
            "`apt-get install -y qemu-user-static debootstrap` and run the check again"
        )
    log(f"installing Debian's qemu-user-static and debootstrap (missing: {', '.join(missing)})")
    run(["apt-get", "update", "-q"])
    run(["apt-get", "install", "-y", "-q", "qemu-user-static", "debootstrap"])


def qemu_version() -> str:
    first = run(["qemu-aarch64-static", "--version"]).stdout.splitlines()[0]
    return first.replace("qemu-aarch64 version ", "")


def debian_mirror() -> str:
    """The Debian archive this host's apt uses (so the check reaches only what apt reaches);
    $LITEPOSE_ARM_DEBIAN_MIRROR overrides it."""
    if os.environ.get("LITEPOSE_ARM_DEBIAN_MIRROR"):
        return os.environ["LITEPOSE_ARM_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        if not source.is_file() or source.suffix not in {".list", ".sources", ""}:
            continue
        text = source.read_text(errors="replace")
        one_line = re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", text, re.MULTILINE)
        stanzas = [
            (uri, suite)
            for block in re.split(r"\n\s*\n", text)
            for uri in re.findall(r"^URIs:\s*(\S+)", block, re.MULTILINE)
            for suite in re.findall(r"^Suites:\s*(\S+)", block, re.MULTILINE)
        ]
        for uri, suite in one_line + stanzas:
            if suite == DEBIAN_SUITE and uri.rstrip("/").endswith("/debian"):
                return uri
    raise CheckError(
        "no Debian archive for bookworm in /etc/apt/sources.list*: set "
        "LITEPOSE_ARM_DEBIAN_MIRROR to the Debian archive URL apt uses"
    )


# --- cached environment --------------------------------------------------------------------------


def read_stamp(directory: Path) -> dict | None:
    stamp = directory / ".litepose-complete.json"
    return json.loads(stamp.read_text()) if stamp.is_file() else None


def write_stamp(directory: Path, **facts) -> dict:
    facts["built"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (directory / ".litepose-complete.json").write_text(json.dumps(facts, indent=2))
    return facts


def ensure_rootfs(cache: Path) -> tuple[Path, dict]:
    """The arm64 Debian root file system with python3.11 (built once, then reused)."""
    rootfs = cache / f"rootfs-{DEBIAN_SUITE}-arm64"
    stamp = read_stamp(rootfs)
    if stamp:
        return rootfs, stamp
    partial = rootfs.with_name(rootfs.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    log(f"building the arm64 Debian {DEBIAN_SUITE} root file system in {rootfs} (about a minute)")
    started = time.monotonic()
    # --foreign only unpacks the base system; the packages of --include are downloaded and unpacked
    # below. Their maintainer scripts never run, which a Python interpreter does not need.
    run(
        [
            "debootstrap",
            "--foreign",
            "--arch=arm64",
            "--variant=minbase",
            f"--include=python{PYTHON_VERSION}",
            DEBIAN_SUITE,
            partial,
            debian_mirror(),
        ]
    )
    archives = partial / "var" / "cache" / "apt" / "archives"
    debs = sorted(archives.glob("*.deb"))
    for deb in debs:
        run(["dpkg-deb", "-x", deb, partial])
    for deb in debs:
        deb.unlink()
    interpreter = partial / "usr" / "bin" / f"python{PYTHON_VERSION}"
    if not interpreter.is_file():
        raise CheckError(f"debootstrap finished but {interpreter} is missing")
    stamp = write_stamp(partial, seconds=round(time.monotonic() - started, 1), packages=len(debs))
    partial.rename(rootfs)
    return rootfs, stamp


def write_cpuinfo(rootfs: Path, cpu: str) -> None:
    """An aarch64 /proc/cpuinfo for the emulated CPU model (see CPU_MODELS), one entry per host CPU
    that the guest also sees in /sys/devices/system/cpu/possible."""
    model = CPU_MODELS[cpu]
    count = os.cpu_count() or 1
    possible = Path("/sys/devices/system/cpu/possible")
    if possible.is_file():
        count = 0
        for part in possible.read_text().strip().split(","):
            low, _, high = part.partition("-")
            count += int(high or low) - int(low) + 1
    entries = [
        f"processor\t: {index}\nBogoMIPS\t: 50.00\nFeatures\t: {model['features']}\n"
        f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: {model['variant']}\n"
        f"CPU part\t: {model['part']}\nCPU revision\t: {model['revision']}\n"
        for index in range(count)
    ]
    (rootfs / "proc").mkdir(exist_ok=True)
    (rootfs / "proc" / "cpuinfo").write_text("\n".join(entries))


def runtime_pins() -> dict[str, str]:
    """name -> version pinned in requirements/runtime.txt."""
    pins = {}
    for raw_line in RUNTIME_REQUIREMENTS.read_text().splitlines():
        requirement = raw_line.split("#", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            if not version:
                raise CheckError(f"{RUNTIME_REQUIREMENTS}: {requirement!r} is not pinned with ==")
            pins[name.strip()] = version.strip()
    return pins


def pip_for_aarch64(*args) -> list:
    platforms = [item for tag in WHEEL_PLATFORMS for item in ("--platform", tag)]
    return [
        sys.executable,
        "-m",
        "pip",
        *args,
        "--disable-pip-version-check",
        "--only-binary=:all:",
        *platforms,
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
    ]


def ensure_wheels(cache: Path) -> tuple[Path, dict]:
    """The aarch64 wheels of the runtime requirements in a --target folder (built once per pin set).
    A pinned version without an aarch64 wheel is replaced by the newest that has one, and recorded."""
    pins = runtime_pins()
    key = hashlib.sha256(json.dumps(pins, sort_keys=True).encode()).hexdigest()[:12]
    site = cache / f"site-aarch64-cp{PYTHON_VERSION.replace('.', '')}-{key}"
    stamp = read_stamp(site)
    if stamp:
        return site, stamp
    partial = site.with_name(site.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log(f"installing the aarch64 wheels of {', '.join(f'{n}=={v}' for n, v in pins.items())} into {site}")
    started = time.monotonic()
    substitutes = {}
    for name, version in pins.items():
        probe = subprocess.run(
            pip_for_aarch64("download", "--no-deps", "-q", "-d", str(cache / "probe"), f"{name}=={version}"),
            capture_output=True,
            text=True,
        )
        if probe.returncode != 0:
            substitutes[name] = version
    shutil.rmtree(cache / "probe", ignore_errors=True)
    requirements = [name if name in substitutes else f"{name}=={version}" for name, version in pins.items()]
    run(pip_for_aarch64("install", "-q", "--target", str(partial), *requirements))
    installed = {}
    for dist_info in partial.glob("*.dist-info"):
        name, _, version = dist_info.name.removesuffix(".dist-info").rpartition("-")
        installed[name.lower().replace("_", "-")] = version
    notes = {
        name: f"{pinned} has no aarch64 wheel; used {installed.get(name, '?')}"
        for name, pinned in substitutes.items()
    }
    stamp = write_stamp(
        partial, seconds=round(time.monotonic() - started, 1), installed=installed, substitutes=notes
    )
    partial.rename(site)
    return site, stamp


# --- frames and runs ----------------------------------------------------------------------------


def extract_frames(path: Path, count: int) -> tuple[np.ndarray, np.ndarray, str, int]:
    """(frames, their indices in the bag, image topic, images in the bag): ``count`` evenly spaced
    frames of the bag's image topic (0: all), decoded to BGR on this host."""
    with BagReader(SAMPLE_BAG) as reader:
        topics = [name for name, info in reader.topics.items() if info.msgtype in IMAGE_TYPES]
        if len(topics) != 1:
            raise CheckError(f"{SAMPLE_BAG.name}: expected one image topic, found {topics}")
        images = [decode_bag_image(image) for image in reader.images(topics[0])]
    total = len(images)
    indices = (
        np.arange(total)
        if count <= 0 or count >= total
        else np.unique(np.linspace(0, total - 1, count).round().astype(int))
    )
    frames = np.stack([images[i] for i in indices])
    np.savez(path, frames=frames, indices=indices)
    return frames, indices, topics[0], total


def run_worker(command: list, frames: Path, result: Path, env: dict, label: str, *extra) -> float:
    """Run the worker, echoing its progress; its wall time in seconds."""
    log(f"{label}")
    started = time.monotonic()
    process = subprocess.Popen(
        [*map(str, command), str(WORKER), str(frames), str(result), *map(str, extra)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    for line in process.stdout:
        output.append(line)
        print(f"  {line.rstrip()}", flush=True)
    if process.wait() != 0:
        tail = "".join(output[-20:])
        raise CheckError(f"{label} failed (exit {process.returncode}):\n{tail}")
    return time.monotonic() - started


def load_result(path: Path) -> dict:
    """A worker's result; per decoder variant, the keypoints and scores split by frame."""
    with np.load(path) as data:
        result = {name: data[name] for name in data.files}
    result["info"] = json.loads(str(result["info"]))
    for variant in DECODER_VARIANTS:
        bounds = np.concatenate([[0], np.cumsum(result[f"{variant}_people"])])
        spans = list(zip(bounds[:-1], bounds[1:], strict=True))
        result[variant] = [
            (result[f"{variant}_keypoints"][a:b], result[f"{variant}_scores"][a:b]) for a, b in spans
        ]
    return result


# --- comparison ---------------------------------------------------------------------------------


def compare_people(reference: dict, other: dict, variant: str, px: float, score: float) -> list[dict]:
    """Per frame: people counts and, for people matched by keypoint distance, the largest keypoint
    and score differences; ``passes`` when the counts are equal and both are within tolerance."""
    rows = []
    for position, frame_index in enumerate(reference["frame_indices"]):
        (ref_kp, ref_sc), (oth_kp, oth_sc) = reference[variant][position], other[variant][position]
        row = {
            "frame": int(frame_index),
            "people": (len(ref_kp), len(oth_kp)),
            "kp_px": 0.0,
            "kp_score": 0.0,
            "person_score": 0.0,
        }
        if len(ref_kp) and len(oth_kp):
            distance = np.linalg.norm(ref_kp[:, None, :, :2] - oth_kp[None, :, :, :2], axis=-1).mean(axis=-1)
            ref_i, oth_i = linear_sum_assignment(distance)
            row["kp_px"] = float(np.abs(ref_kp[ref_i, :, :2] - oth_kp[oth_i, :, :2]).max())
            row["kp_score"] = float(np.abs(ref_kp[ref_i, :, 2] - oth_kp[oth_i, :, 2]).max())
            row["person_score"] = float(np.abs(ref_sc[ref_i] - oth_sc[oth_i]).max())
        row["passes"] = (
            row["people"][0] == row["people"][1]
            and row["kp_px"] <= px
            and max(row["kp_score"], row["person_score"]) <= score
        )
        rows.append(row)
    return rows


def compare_outputs(reference: dict, other: dict) -> list[dict]:
    """Per frame: the largest difference of the network outputs, their magnitude, same input."""
    names = sorted(name for name in reference if name.startswith("output"))
    return [
        {
            "abs": max(float(np.abs(reference[n][i] - other[n][i]).max()) for n in names),
            "range": max(float(np.abs(reference[n][i]).max()) for n in names),
            "same_input": bool(reference["input_digests"][i] == other["input_digests"][i]),
        }
        for i in range(len(reference["frame_indices"]))
    ]


def changed_frames(rows: list[dict]) -> list[int]:
    return [row["frame"] for row in rows if not row["passes"]]


# --- the page -----------------------------------------------------------------------------------


def seconds_text(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{seconds:.1f} s"


def people_table(rows: list[dict], outputs: list[dict]) -> list[str]:
    lines = [
        "| bag frame | people x86_64 | people aarch64 | max keypoint Δ (px) | max keypoint score Δ "
        "| max person score Δ | max network output Δ | same people |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row, out in zip(rows, outputs, strict=True):
        lines.append(
            f"| {row['frame']} | {row['people'][0]} | {row['people'][1]} | {row['kp_px']:.4f} | "
            f"{row['kp_score']:.1e} | {row['person_score']:.1e} | {out['abs']:.1e} | "
            f"{'yes' if row['passes'] else '**no**'} |"
        )
    return lines


def write_page(
    path: Path,
    *,
    results: dict,
    cpu: str,
    qemu: str,
    command: str,
    durations: dict,
    rootfs_stamp: dict,
    site_stamp: dict,
    topic: str,
    bag_images: int,
) -> bool:
    x86, arm = results["x86"], results["arm"]
    outputs = compare_outputs(x86, arm)
    worst_output = max(o["abs"] for o in outputs)
    output_range = max(o["range"] for o in outputs)
    same_inputs = all(o["same_input"] for o in outputs)
    network_ok = same_inputs and worst_output <= OUTPUT_TOLERANCE
    end_to_end = {
        variant: compare_people(x86, arm, variant, KEYPOINT_TOLERANCE_PX, SCORE_TOLERANCE)
        for variant in DECODER_VARIANTS
    }
    # The decoding code: each side decoding the other's outputs must give that side's people exactly.
    cross = {
        variant: compare_people(x86, results["arm_from_x86"], variant, EXACT_PX, EXACT_SCORE)
        + compare_people(arm, results["x86_from_arm"], variant, EXACT_PX, EXACT_SCORE)
        for variant in DECODER_VARIANTS
    }
    decoder_ok = all(row["passes"] for rows in cross.values() for row in rows)
    reference_cost_ok = all(row["passes"] for row in end_to_end["tie0"])
    passed = network_ok and decoder_ok and reference_cost_ok
    default_rows, tie0_rows = end_to_end["default"], end_to_end["tie0"]
    default_changed = changed_frames(default_rows)
    count_changed = [row["frame"] for row in default_rows if row["people"][0] != row["people"][1]]
    noise = results["noise"]
    x86_info, arm_info = x86["info"], arm["info"]
    x86_simd = [name for name in x86_info["numpy_simd"] if name in ("AVX512F", "AVX2", "FMA3")] or ["SSE"]
    x86_levels = [name for name in x86_info["numpy_simd"] if name in X86_SIMD_LEVELS]
    frames = len(default_rows)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def verdict(ok: bool) -> str:
        return "yes" if ok else "**NO**"

    lines = [
        "# aarch64 parity of the core library (emulated)",
        "",
        f"Generated by `{command}` (tools/check_arm.py) on {now}. Do not edit: run the check again.",
        "",
        f"{frames} frames of the bundled sample bag (`{SAMPLE_BAG.name}`, topic `{topic}`, {bag_images} "
        "images) went through `litepose_ros.estimator.Estimator` with ONNX Runtime on the CPU and the "
        f"bundled model (`{x86_info['model']}`), once natively on this x86_64 machine and once as aarch64 "
        f"code under qemu-user emulating a {cpu} ({CPU_MODELS[cpu]['about']}). Settings: the node's "
        "defaults (CPU execution provider, no flip test, refine on), one inference thread, the same pixels "
        "(the bag's JPEG images decoded once on the host, so two JPEG decoders are not compared).",
        "",
        f"## Result: {'PASS' if passed else 'FAIL'}",
        "",
        "| what is compared | criterion | met |",
        "|---|---|---|",
        f"| network input (resize, normalise) | bit-identical on every frame | {verdict(same_inputs)} |",
        f"| network outputs | within {OUTPUT_TOLERANCE:g} (largest difference {worst_output:.1e}, outputs "
        f"up to {output_range:.2f}) | {verdict(worst_output <= OUTPUT_TOLERANCE)} |",
        "| the decoding code | each side decoding the other side's network outputs finds exactly the other "
        f"side's people (both ways, both decoder settings, {frames} frames) | {verdict(decoder_ok)} |",
        "| people, reference grouping cost (`tag_tie_break=0`) | same people count on every frame, keypoints "
        f"within {KEYPOINT_TOLERANCE_PX} px, scores within {SCORE_TOLERANCE:g} (largest: "
        f"{max(r['kp_px'] for r in tie0_rows):.4f} px, "
        f"{max(max(r['kp_score'], r['person_score']) for r in tie0_rows):.1e}) | "
        f"{verdict(reference_cost_ok)} |",
        "| people, the node's default decoder (`tag_tie_break=1e-6`) | reported, not a criterion "
        "(see below) | "
        f"same people on {frames - len(default_changed)} of {frames} frames; people count equal on "
        f"{frames - len(count_changed)} of {frames} |",
        "",
        "## Why the numbers differ, and why the default decoder's people sometimes do",
        "",
        f"- The network outputs differ in their last bits (at most {worst_output:.1e}, "
        f"{worst_output / max(output_range, 1e-12):.1e} of their magnitude). ONNX Runtime's CPU kernels "
        f"(MLAS) are written per architecture: on x86_64 {'/'.join(x86_simd)} code, on aarch64 NEON (ASIMD) "
        "code, with different blockings of the convolutions' sums, and float addition in another order "
        "rounds differently.",
        "- The decoding code computes the same on both architectures"
        f"{'' if decoder_ok else ' on NOT every frame'}: decoded from the same network outputs, the "
        "people are identical (row 3 above).",
    ]
    if default_changed:
        lines.append(
            f"- The default decoder's people differ on frames {default_changed} although the outputs "
            "differ only in their last bits. Its grouping cost, `round(tag distance) * 100 - score + "
            "1e-6 * tag distance`, is meant to break the rounded cost's ties by tag distance, but with "
            "one-dimensional tags (no flip test) the summed distance |tag - person tag| is the same for "
            "every pairing when the candidates' and the people's tags do not interleave, so exact ties "
            "remain (the two runs' groupings were seen to part where the Hungarian solver chose between "
            "assignments of equal total cost). Which of the tied optima the solver returns then follows "
            "the last bits of the costs: a joint moves to another person, or a weak person is found or "
            "not. The cross-decoding (row 3) reproduces each side's people from its own outputs, so these "
            "differences come from the outputs' rounding, not from decoding on ARM."
        )
    lines += [
        "- With the reference's exact cost (no tie-break term) the two architectures "
        f"{'agree on every frame' if reference_cost_ok else 'do NOT agree on every frame'} (row 4).",
        f"- Sensitivity on x86_64 alone: Gaussian noise of {NOISE_SIGMA:g} (about the size of the "
        "differences above) added to its "
        "network outputs changes the default decoder's people on "
        f"{', '.join(str(len(changed_frames(n['default']))) for n in noise)} of {frames} frames "
        f"({len(noise)} seeds), and the reference cost's on "
        f"{', '.join(str(len(changed_frames(n['tie0']))) for n in noise)}.",
        "",
        "## People per frame, the node's default decoder",
        "",
        *people_table(default_rows, outputs),
        "",
        "## People per frame, reference grouping cost (`tag_tie_break=0`)",
        "",
        *people_table(tie0_rows, outputs),
    ]

    versions = [
        ("machine", "machine"),
        ("Python", "python"),
        ("C library", "libc"),
        ("numpy", "numpy"),
        ("opencv-python-headless", "opencv"),
        ("onnxruntime", "onnxruntime"),
        ("scipy", "scipy"),
    ]
    lines += ["", "## Versions", "", "| | x86_64 (this machine) | aarch64 (emulated) |", "|---|---|---|"]
    lines += [f"| {label} | {x86_info[key]} | {arm_info[key]} |" for label, key in versions]
    lines += [
        f"| ONNX Runtime providers | {', '.join(x86_info['providers'])} | "
        f"{', '.join(arm_info['providers'])} |",
        f"| numpy SIMD dispatch | {', '.join(x86_levels)} (and their sub-features) | "
        f"{', '.join(arm_info['numpy_simd'])} |",
        f"| estimator | {x86_info['estimator'].replace(str(PROJECT_DIR), '.')} | "
        f"{arm_info['estimator'].replace(str(PROJECT_DIR), '.')} |",
        "",
        f"Emulator: qemu-user {qemu} (`qemu-aarch64-static -cpu {cpu}`), Debian {DEBIAN_SUITE} arm64 root "
        f"file system (built {rootfs_stamp['built']}), aarch64 wheels from PyPI pinned as in "
        "requirements/runtime.txt (installed on the host with `pip install --target --platform "
        "manylinux..._aarch64 --only-binary=:all:`).",
    ]
    for name, note in site_stamp.get("substitutes", {}).items():
        lines.append(f"Substitute: {name} {note}.")

    arm_median, x86_median = float(np.median(arm["predict_s"])), float(np.median(x86["predict_s"]))
    lines += [
        "",
        "## How long the check takes",
        "",
        "| step | this run | when first built |",
        "|---|---|---|",
        f"| arm64 root file system (debootstrap, unpack; cached) | {durations['rootfs']} | "
        f"{seconds_text(rootfs_stamp['seconds'])} ({rootfs_stamp['packages']} packages) |",
        f"| aarch64 wheels (pip; cached) | {durations['wheels']} | {seconds_text(site_stamp['seconds'])} |",
        f"| decode the bag's frames (host) | {durations['frames']} | |",
        f"| x86_64 run | {durations['x86']} | |",
        f"| aarch64 run under qemu | {durations['aarch64']} | |",
        f"| cross-decoding and noise runs | {durations['cross']} | |",
        f"| whole check | {durations['total']} | |",
        "",
        "The environment is cached in `$LITEPOSE_ARM_CACHE` (default `~/.cache/litepose_arm`, about "
        "650 MB), outside the work tree; a fresh clone builds it once. `--frames N` checks N evenly "
        "spaced frames (0: all 48), `--cpu` picks another emulated CPU model "
        f"({', '.join(sorted(CPU_MODELS))}); with make: `make check-arm ARM_CHECK_ARGS='--frames 0'`. The "
        "machine's two cores are shared with other work, so durations vary from run to run.",
        "",
        "## Emulated timing: evidence that it ran, NOT ARM speed",
        "",
        f"Median `Estimator.predict` per frame: {arm_median:.2f} s as aarch64 code under qemu, "
        f"{x86_median * 1e3:.1f} ms natively on x86_64. qemu translates every ARM instruction and "
        "computes floating-point vector instructions in software, so this says nothing about how fast "
        "an ARM board runs the model. It only shows that the whole pipeline ran as aarch64 code.",
        "",
        "## What this check does not prove",
        "",
        "- Speed on any ARM board (see above), and no real cache, memory-bandwidth or thermal "
        "behaviour: the emulator runs on this machine's caches and memory.",
        "- Nothing about the GPU: no CUDA, no TensorRT, no FP16 engines, no Jetson build of ONNX "
        "Runtime (onnxruntime-gpu for JetPack); those paths are described in docs/jetson.md and not "
        "run here.",
        "- Only the CPU features of the emulated model (and the kernels ONNX Runtime picks for them); "
        "a different ARM CPU may take other kernels, e.g. with SVE or the int8 matrix instructions.",
        "- Not the ROS 2 node: there are no aarch64 wheels of rclpy on PyPI, so the node, messages and "
        "DDS are not exercised on aarch64 (on a robot they come from the system ROS 2).",
        "- Not Python 3.10 or the older numpy / scipy / onnxruntime of a JetPack 6 robot: the emulated "
        "system is Debian 12's Python 3.11 with this project's pinned versions.",
        "- One model (the bundled XS demonstration model) at its own input size on one video's frames.",
        "",
    ]
    path.write_text("\n".join(lines))
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description="aarch64 parity check of the core library under qemu-user.")
    parser.add_argument(
        "--frames",
        type=int,
        default=DEFAULT_FRAMES,
        help=f"evenly spaced bag frames to check (default {DEFAULT_FRAMES}; 0: all)",
    )
    parser.add_argument("--cpu", choices=sorted(CPU_MODELS), default=DEFAULT_CPU, help="emulated CPU model")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="environment cache directory")
    parser.add_argument("--output", type=Path, default=DEFAULT_PAGE, help="result page to write")
    args = parser.parse_args()
    if platform.machine() != "x86_64":
        raise CheckError(
            f"this check compares an emulated aarch64 run with a native x86_64 run; this "
            f"machine is {platform.machine()}"
        )
    cache = args.cache.expanduser().resolve()
    if cache == PROJECT_DIR or PROJECT_DIR in cache.parents:
        raise CheckError(f"keep the cache outside the work tree (got {cache})")
    cache.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python tools/check_arm.py", *sys.argv[1:]])
    if os.environ.get("LITEPOSE_CHECK_ARM_FROM_MAKE"):
        command = f"make check-arm{' ARM_CHECK_ARGS=' + repr(' '.join(sys.argv[1:])) if sys.argv[1:] else ''}"
    durations = {}
    started = time.monotonic()

    ensure_host_tools()
    step = time.monotonic()
    rootfs, rootfs_stamp = ensure_rootfs(cache)
    durations["rootfs"] = seconds_text(time.monotonic() - step)
    write_cpuinfo(rootfs, args.cpu)
    step = time.monotonic()
    site, site_stamp = ensure_wheels(cache)
    durations["wheels"] = seconds_text(time.monotonic() - step)

    work = cache / "run"
    work.mkdir(exist_ok=True)
    frames_file = work / "frames.npz"
    step = time.monotonic()
    frames, _, topic, bag_images = extract_frames(frames_file, args.frames)
    durations["frames"] = seconds_text(time.monotonic() - step)
    log(f"{len(frames)} of {bag_images} frames of {SAMPLE_BAG.name} decoded")

    x86_command = [sys.executable]
    x86_env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    arm_command = [
        "qemu-aarch64-static",
        "-cpu",
        args.cpu,
        "-L",
        rootfs,
        rootfs / "usr" / "bin" / f"python{PYTHON_VERSION}",
    ]
    arm_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cache),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(site),
        "PYTHONNOUSERSITE": "1",
        # Compiled bytecode goes to the cache: none in the work tree, none recompiled under emulation.
        "PYTHONPYCACHEPREFIX": str(cache / "pycache-aarch64"),
    }
    files = {name: work / f"{name}.npz" for name in ("x86", "arm", "arm_from_x86", "x86_from_arm")}
    durations["x86"] = seconds_text(
        run_worker(x86_command, frames_file, files["x86"], x86_env, "x86_64: running the estimator")
    )
    durations["aarch64"] = seconds_text(
        run_worker(
            arm_command,
            frames_file,
            files["arm"],
            arm_env,
            f"aarch64 ({args.cpu}, emulated): running the estimator",
        )
    )
    step = time.monotonic()
    run_worker(
        arm_command,
        frames_file,
        files["arm_from_x86"],
        arm_env,
        "aarch64: decoding the x86_64 network outputs",
        "--outputs-from",
        files["x86"],
    )
    run_worker(
        x86_command,
        frames_file,
        files["x86_from_arm"],
        x86_env,
        "x86_64: decoding the aarch64 network outputs",
        "--outputs-from",
        files["arm"],
    )
    noise_files = []
    for seed in range(NOISE_SEEDS):
        noise_files.append(work / f"x86_noise{seed}.npz")
        run_worker(
            x86_command,
            frames_file,
            noise_files[-1],
            x86_env,
            f"x86_64: decoding its own outputs plus noise {NOISE_SIGMA:g} (seed {seed})",
            "--outputs-from",
            files["x86"],
            "--noise",
            NOISE_SIGMA,
            "--seed",
            seed,
        )
    durations["cross"] = seconds_text(time.monotonic() - step)

    results = {name: load_result(file) for name, file in files.items()}
    if results["arm"]["info"]["machine"] != "aarch64":
        machine = results["arm"]["info"]["machine"]
        raise CheckError(f"the emulated run reports machine {machine!r}, not aarch64")
    results["noise"] = [
        {
            variant: compare_people(
                results["x86"], load_result(file), variant, KEYPOINT_TOLERANCE_PX, SCORE_TOLERANCE
            )
            for variant in DECODER_VARIANTS
        }
        for file in noise_files
    ]
    durations["total"] = seconds_text(time.monotonic() - started)
    passed = write_page(
        args.output,
        results=results,
        cpu=args.cpu,
        qemu=qemu_version(),
        command=command,
        durations=durations,
        rootfs_stamp=rootfs_stamp,
        site_stamp=site_stamp,
        topic=topic,
        bag_images=bag_images,
    )
    log(f"{'PASS' if passed else 'FAIL'}: wrote {args.output} (whole check {durations['total']})")
    return 0 if passed else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckError as error:
        print(f"check-arm: {error}", file=sys.stderr)
        sys.exit(2)
