#!/usr/bin/env bash
# vendor/openmls is the published openmls 0.9.2 plus the patch series in vendor/patches/, one
# patch per rule (spec/large-groups.md, "The openmls patch"), applied in the order of their
# numbers. This script re-creates it from the published crate and checks that it has not drifted.
#
#   scripts/openmls-patches.sh rebuild     re-create vendor/openmls: openmls 0.9.2 + the series
#   scripts/openmls-patches.sh check       the same into a temporary directory; fails, printing
#                                          the diff, if vendor/openmls differs (CI: scripts/test.sh)
#   scripts/openmls-patches.sh refresh N   fold what vendor/openmls has beyond the series into
#                                          patch N (its description kept), then check
#
# The published crate is read from cargo's registry cache (the .crate, checked against the
# checksum in Cargo.lock, where atmls's dev-dependency `openmls_upstream` is that release), or
# its extracted sources; when neither is there, `cargo fetch` downloads it first. Patches are
# applied with `patch -p1` without fuzz (or `git apply` where there is no `patch`). Compared:
# every file but cargo's `.cargo-ok` marker and a `target/` directory (vendor/openmls's
# Cargo.lock is the published one and is compared too).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=0.9.2
vendor=vendor/openmls
series=vendor/patches
excludes=(-x .cargo-ok -x target)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
shopt -s nullglob

die() {
    echo "openmls-patches: $*" >&2
    exit 1
}

# The checksum of the published openmls $version in atmls's Cargo.lock (sha256 of the .crate).
locked_checksum() {
    awk -v want="\"$version\"" '
        /^\[\[package\]\]/ { name = ""; ver = ""; registry = 0 }
        /^name = /     { name = $3 }
        /^version = /  { ver = $3 }
        /^source = "registry\+/ { registry = 1 }
        /^checksum = / { if (name == "\"openmls\"" && ver == want && registry) print $3 }
    ' Cargo.lock | tr -d '"' | head -n 1
}

# Extracts the published crate into the new directory $1.
pristine() {
    local cargo_home=${CARGO_HOME:-$HOME/.cargo}
    local crates=("$cargo_home"/registry/cache/*/openmls-$version.crate)
    local sources=("$cargo_home"/registry/src/*/openmls-$version)
    if ((${#crates[@]} == 0 && ${#sources[@]} == 0)); then
        echo "openmls-patches: openmls $version is not in cargo's registry; cargo fetch" >&2
        cargo fetch --manifest-path "$root/Cargo.toml" >&2
        crates=("$cargo_home"/registry/cache/*/openmls-$version.crate)
        sources=("$cargo_home"/registry/src/*/openmls-$version)
    fi
    mkdir -p "$tmp/extract"
    if ((${#crates[@]} > 0)); then
        local want got
        want=$(locked_checksum)
        if [[ -n $want ]] && command -v sha256sum >/dev/null; then
            got=$(sha256sum "${crates[0]}" | cut -d' ' -f1)
            [[ $got == "$want" ]] ||
                die "${crates[0]}: sha256 $got, but Cargo.lock says $want"
        fi
        tar -xzf "${crates[0]}" -C "$tmp/extract"
    elif ((${#sources[@]} > 0)); then
        # A copy of the files (through a symlinked directory too): the registry's stays as it is.
        mkdir "$tmp/extract/openmls-$version"
        cp -a "${sources[0]}/." "$tmp/extract/openmls-$version/"
    else
        die "openmls $version: no .crate nor sources under $cargo_home/registry after cargo fetch"
    fi
    mv "$tmp/extract/openmls-$version" "$1"
    [[ -d $1 && ! -L $1 ]] || die "openmls $version: the extracted crate is not a directory"
    rm -rf "$tmp/extract" "$1/.cargo-ok"
}

# The patch files, in order.
patches=("$series"/[0-9][0-9][0-9][0-9]-*.patch)
((${#patches[@]} > 0)) || die "no patches in $series/"

# Applies patch file $2 to directory $1, or fails with message $3. A patch that is only a
# description (no hunk yet, see refresh) changes nothing.
apply() {
    local file=$2 failed=${3:-"$2 does not apply cleanly"}
    [[ $file == /* ]] || file=$root/$file
    grep -q '^@@ ' "$file" || return 0
    if command -v patch >/dev/null; then
        patch -d "$1" -p1 -s -F0 -N --no-backup-if-mismatch -r - <"$file" || die "$failed"
    else
        (cd "$1" && git apply -p1 "$file") || die "$failed"
    fi
}

# The published crate plus the first $2 patches (all if absent) in the new directory $1.
build() {
    local dir=$1 upto=${2:-${#patches[@]}} n=0 file
    pristine "$dir"
    for file in "${patches[@]}"; do
        n=$((n + 1))
        ((n <= upto)) || break
        apply "$dir" "$file"
    done
}

# The diff from directory $1 to directory $2 (a/ and b/ paths, no timestamps); status 1 if they
# differ.
tree_diff() {
    local cmp
    cmp=$(mktemp -d "$tmp/cmp.XXXX")
    ln -s "$(cd "$1" && pwd)" "$cmp/a"
    ln -s "$(cd "$2" && pwd)" "$cmp/b"
    local status=0
    (cd "$cmp" && diff -ruN "${excludes[@]}" a b) >"$cmp/out" || status=$?
    ((status <= 1)) || die "diff failed"
    sed -E 's/^((---|\+\+\+) [^\t]+)\t.*$/\1/' "$cmp/out"
    return "$status"
}

check() {
    build "$tmp/series"
    if ! tree_diff "$tmp/series" "$vendor" >"$tmp/drift"; then
        cat "$tmp/drift"
        die "vendor/openmls differs from openmls $version + $series/ (the diff above, from the" \
            "series to vendor/openmls): regenerate the patch it belongs to" \
            "(scripts/openmls-patches.sh refresh N) or run scripts/openmls-patches.sh rebuild"
    fi
    echo "openmls-patches: vendor/openmls = openmls $version + ${#patches[@]} patches in $series/"
}

case "${1:-}" in
rebuild)
    build "$tmp/series"
    # Everything but a build directory is replaced.
    mkdir -p "$vendor"
    find "$vendor" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
    cp -a "$tmp/series/." "$vendor/"
    echo "openmls-patches: rebuilt vendor/openmls from openmls $version + ${#patches[@]} patches"
    ;;
check)
    check
    ;;
refresh)
    [[ ${2:-} =~ ^[0-9]+$ ]] || die "usage: $0 refresh N (the number of the patch to regenerate)"
    n=$((10#$2))
    target_files=("$series"/$(printf '%04d' "$n")-*.patch)
    ((${#target_files[@]} == 1)) || die "no single patch numbered $n in $series/"
    target=${target_files[0]}
    # What vendor/openmls has beyond the series.
    build "$tmp/series"
    if tree_diff "$tmp/series" "$vendor" >"$tmp/delta"; then
        die "vendor/openmls is the series already: nothing to fold into $target"
    fi
    # The tree before patch N, and after it with the change folded in.
    build "$tmp/before" $((n - 1))
    cp -a "$tmp/before" "$tmp/after"
    apply "$tmp/after" "$target"
    apply "$tmp/after" "$tmp/delta" "the change does not apply to the tree after $target: it
is in lines a later patch changes (refresh that one instead; nothing was written)"
    {
        # The description: everything up to the first line of the diff.
        awk '/^(diff |--- |\+\+\+ |@@ )/ { exit } { print }' "$target"
        tree_diff "$tmp/before" "$tmp/after" || true
    } >"$tmp/new.patch"
    mv "$tmp/new.patch" "$target"
    echo "openmls-patches: regenerated $target"
    # The later patches must still apply, and the series must give vendor/openmls.
    rm -rf "$tmp/series" "$tmp/before" "$tmp/after"
    check
    ;;
*)
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2
    exit 2
    ;;
esac
