#!/usr/bin/env bash
# Installs the system programs fijiport's checks need when they are missing and we may (root + apt-get):
# Node.js/npm (onnxruntime-node, the ONNX runtime deepImageJ embeds), a C compiler (the one-line
# shim the TensorFlow 1.x libraries need under Python >= 3.9), and ImageJ 1.x with Xvfb (the tests
# run real ImageJ macros: ROI painting, mask making).
# Without root it only says what is missing.
set -euo pipefail
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
[ -f /usr/share/java/ij.jar ] || missing+=(imagej)
command -v xvfb-run >/dev/null 2>&1 || missing+=(xvfb)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "missing: ${missing[*]} (install them with your package manager, e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
