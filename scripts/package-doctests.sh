#!/usr/bin/env bash
# Runs the doctests of the packaged crates from their tarballs (target/package/*.crate, made by
# `cargo package`), as a crates.io user would build them: path dependencies are gone, and the
# three crates find each other through a [patch] on the extracted copies. It checks that no
# doctest leans on a file or an unversioned dependency that packaging leaves out.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for crate in sqs-handler-macros sqs-local sqs-handler; do
  tar -xzf "target/package/$crate-$version.crate" -C "$work"
done
cat >"$work/Cargo.toml" <<TOML
[workspace]
resolver = "3"
members = ["sqs-handler-$version", "sqs-local-$version", "sqs-handler-macros-$version"]

[patch.crates-io]
sqs-handler = { path = "sqs-handler-$version" }
sqs-handler-macros = { path = "sqs-handler-macros-$version" }
sqs-local = { path = "sqs-local-$version" }
TOML
# The workspace's lock pins the same third-party versions; the shared target dir reuses them.
cp Cargo.lock "$work/Cargo.lock"
CARGO_TARGET_DIR="$PWD/target" \
  cargo test --manifest-path "$work/Cargo.toml" -p sqs-handler -p sqs-local --doc
