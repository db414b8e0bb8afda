#!/usr/bin/env bash
# Stage a function package in $STAGING (run inside docker/package/Dockerfile, which gives
# WORK_DIR and STAGING as build arguments from gdal_lambda.runtime).
#
# usage: MODE=full|layer WORK_DIR=dir STAGING=dir [NO_BINARY=a,b] stage-package.sh install|stage
#   install  pip-install $WORK_DIR/requirements.txt into $WORK_DIR/site
#            full:  every requirement (--target), native geo packages built against /opt
#            layer: only what the layer in /opt/python lacks: pip sees the layer's
#                   distributions on PYTHONPATH as installed and --user installs the rest
#   stage    $STAGING = site + the user's code (+ /opt's lib, share, bin when full)
set -euo pipefail

mode=${MODE:?MODE must be full or layer}
work=${WORK_DIR:?WORK_DIR is given by the Dockerfile}
stage=${STAGING:?STAGING is given by the Dockerfile}

case ${1:-} in
install)
    mkdir -p "$work/site"
    if [[ ! -s $work/requirements.txt ]]; then
        exit 0
    fi
    pip_args=(--no-cache-dir --disable-pip-version-check -r "$work/requirements.txt" --no-binary "${NO_BINARY:-:none:}")
    if [[ $mode == full ]]; then
        python3 -m pip install --target "$work/site" "${pip_args[@]}"
    else
        PYTHONPATH=/opt/python PYTHONUSERBASE=$work/user python3 -m pip install --user "${pip_args[@]}"
        user_site=$(PYTHONUSERBASE=$work/user python3 -c 'import site; print(site.getusersitepackages())')
        # What pip took as installed only because the build image's own interpreter has it
        # (packaging, setuptools...): installed too, as often as new ones turn up.
        here=$(dirname "${BASH_SOURCE[0]}")
        for _ in 1 2 3 4 5; do
            mkdir -p "$user_site"
            python3 "$here/unmet-requirements.py" "$work/requirements.txt" "$user_site" /opt/python \
                >/tmp/unmet.txt
            [[ -s /tmp/unmet.txt ]] || break
            echo "installing what only the build image had: $(tr '\n' ' ' </tmp/unmet.txt)"
            PYTHONPATH=/opt/python PYTHONUSERBASE=$work/user python3 -m pip install --user \
                --no-cache-dir --disable-pip-version-check --ignore-installed --no-deps \
                --no-binary "${NO_BINARY:-:none:}" -r /tmp/unmet.txt
        done
        if [[ -d $user_site ]]; then
            cp -a "$user_site/." "$work/site/"
        fi
    fi
    ;;
stage)
    rm -rf "$stage"
    mkdir -p "$stage"
    cp -a "$work/site/." "$stage/"
    if [[ $mode == full ]]; then
        cp -a /opt/lib /opt/share /opt/bin "$stage/"
    fi
    # The user's code last: it wins over a same-named file from a requirement.
    cp -a "$work/code/." "$stage/"
    ;;
*)
    echo "usage: MODE=full|layer stage-package.sh install|stage" >&2
    exit 2
    ;;
esac
