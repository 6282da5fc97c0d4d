#!/usr/bin/python3
"""Writes flake.lock from EXO's own flake.lock, offline (CI cannot reach GitHub to run
`nix flake lock`). Usage: nix/make-lock.py EXO_GIT_DIR > flake.lock

- nixpkgs: the node EXO's lock pins at EXO_REV (nixos-25.11), unchanged: flake.nix makes EXO's
  nixpkgs follow this one, so both are the one revision EXO was tested with.
- exo: github:exo-explore/exo at EXO_REV. Its narHash is the NAR hash of the commit's tree
  (a GitHub tarball is `git archive` of it): `git archive EXO_REV | tar -x -C D; nix-hash
  --type sha256 D`, in SRI form. The same method reproduces the published hash of macmon
  a1cd06b (sha256-wcq4PUXK...) that EXO's flake.nix pins, which is how it was checked.
- EXO's other inputs (flake-parts, uv2nix, ...): EXO's nodes as they are; their `follows`
  paths, relative to EXO's root there, become paths through the `exo` node here.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

EXO_REV = "b5375f8cee4368d09e1ce96a56b9f81fb0bc81aa"


def git(gitdir, *args):
    return subprocess.run(["git", "--git-dir", gitdir, *args], check=True, capture_output=True).stdout


def nar_hash(gitdir, rev):
    with tempfile.TemporaryDirectory() as d:
        tree = os.path.join(d, "tree")
        os.mkdir(tree)
        archive = git(gitdir, "archive", rev)
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        hexdigest = subprocess.run(["nix-hash", "--type", "sha256", tree], check=True,
                                   capture_output=True, text=True).stdout.strip()
    return "sha256-" + base64.b64encode(bytes.fromhex(hexdigest)).decode()


def main():
    gitdir = sys.argv[1]
    exo_lock = json.loads(git(gitdir, "show", f"{EXO_REV}:flake.lock"))
    nodes = exo_lock["nodes"]
    exo_root = nodes.pop(exo_lock["root"])
    ours = {}
    for name, node in nodes.items():
        if name == "nixpkgs":
            continue
        node = dict(node)
        if "inputs" in node:
            node["inputs"] = {k: (["exo"] + v if isinstance(v, list) else v)
                              for k, v in node["inputs"].items()}
        ours[name] = node
    exo_inputs = dict(exo_root["inputs"])
    exo_inputs["nixpkgs"] = ["nixpkgs"]  # inputs.exo.inputs.nixpkgs.follows = "nixpkgs"
    ours["exo"] = {
        "inputs": exo_inputs,
        "locked": {
            "lastModified": int(git(gitdir, "log", "-1", "--format=%ct", EXO_REV)),
            "narHash": nar_hash(gitdir, EXO_REV),
            "owner": "exo-explore",
            "repo": "exo",
            "rev": EXO_REV,
            "type": "github",
        },
        "original": {"owner": "exo-explore", "repo": "exo", "rev": EXO_REV, "type": "github"},
    }
    ours["nixpkgs"] = nodes["nixpkgs"]
    ours["root"] = {"inputs": {"exo": "exo", "nixpkgs": "nixpkgs"}}
    lock = {"nodes": dict(sorted(ours.items())), "root": "root", "version": exo_lock["version"]}
    json.dump(lock, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
