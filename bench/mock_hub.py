#!/usr/bin/env python3
"""A mock Hugging Face Hub serving a folder of JSONL datasets as parquet.

    $LMEVAL_VENV/bin/python bench/mock_hub.py [--fixtures tests/fixtures/hub] [--port 0]

The folder holds `<owner>--<name>/<config>/<split>.jsonl` (tests/fixtures/hub's layout).
At start-up every file is converted with pyarrow (JSON types inferred as `datasets`
infers them) into `<config>/<split>-00000-of-0000N.parquet` in a temporary folder, its
size and SHA-256 computed, and a dataset card (README.md) written whose `configs` list
each config's `data_files`. The commit of a repository is a hash of its files, so other
content gives another commit. Then it serves the part of the Hub's HTTP API that assay
uses:

  GET /api/datasets/{owner}/{name}[/revision/{revision}][?blobs=true]
      200 {"id", "sha", "gated": false, "private": false, "cardData": {"configs": [...]},
           "siblings": [{"rfilename", "blobId", "size", "lfs": {"sha256", "size", "pointerSize"}}]}
      (README.md is a sibling without "lfs", as on the Hub); 404 {"error": ...} for an
      unknown repository or revision. The revision is `main` (or --revision) or the
      commit itself, URL-encoded.
  GET|HEAD /datasets/{owner}/{name}/resolve/{revision}/{path}
      the file's bytes; `Range: bytes=N-` / `bytes=N-M` answer 206; 404 otherwise.
      With --redirect-lfs a parquet file answers 302 to /lfs/{sha256}, as the Hub
      sends LFS files to its CDN.
  GET /_mock/stats
      {"files_served", "bytes_served", "api_calls", "not_found", "served": {path: count}}

The first line on stdout is the URL it listens on (then it logs to stderr); it runs
until interrupted. Needs pyarrow (lm-eval's venv has it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pyarrow.json as paj
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SPLIT_ORDER = ["train", "validation", "test"]


@dataclass
class RepoFile:
    path: str
    """rfilename, relative to the repository."""
    local: Path
    size: int
    sha256: str
    lfs: bool

    def sibling(self) -> dict:
        data = self.local.read_bytes() if not self.lfs else lfs_pointer(self.sha256, self.size)
        entry = {"rfilename": self.path, "blobId": git_blob_id(data), "size": self.size}
        if self.lfs:
            entry["lfs"] = {"sha256": self.sha256, "size": self.size, "pointerSize": len(data)}
        return entry


@dataclass
class Repo:
    id: str
    sha: str
    configs: list[dict]
    files: dict[str, RepoFile]


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def split_key(name: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(name) if name in SPLIT_ORDER else len(SPLIT_ORDER), name)


def dataset_card(repo_id: str, configs: list[dict]) -> bytes:
    lines = ["---", "configs:"]
    for c in configs:
        lines.append(f"- config_name: {c['config_name']}")
        lines.append("  data_files:")
        for df in c["data_files"]:
            lines.append(f"  - split: {df['split']}")
            lines.append(f"    path: {df['path']}")
    lines += ["---", "", f"# {repo_id} (mock)", "",
              "Documents written for assay's tests in the shape of the real dataset; served by bench/mock_hub.py.", ""]
    return "\n".join(lines).encode("utf-8")


def build_repo(folder: Path, out: Path, row_group_size: int, shard_rows: int | None) -> Repo:
    """Parquet files, sizes, hashes and card of one `<owner>--<name>` folder."""
    repo_id = folder.name.replace("--", "/", 1)
    files: dict[str, RepoFile] = {}
    configs = []
    for config_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        config = config_dir.name
        data_files = []
        for src in sorted(config_dir.glob("*.jsonl"), key=lambda p: split_key(p.stem)):
            split = src.stem
            table = paj.read_json(src, read_options=paj.ReadOptions(block_size=1 << 26))
            rows = table.num_rows
            per = shard_rows or max(rows, 1)
            shards = max(1, -(-rows // per))
            for k in range(shards):
                rel = f"{config}/{split}-{k:05d}-of-{shards:05d}.parquet"
                dest = out / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table.slice(k * per, per), dest, row_group_size=row_group_size)
                files[rel] = RepoFile(rel, dest, dest.stat().st_size, sha256_of(dest), True)
            data_files.append({"split": split, "path": f"{config}/{split}-*"})
        configs.append({"config_name": config, "data_files": data_files})
    card = out / "README.md"
    card.write_bytes(dataset_card(repo_id, configs))
    files["README.md"] = RepoFile("README.md", card, card.stat().st_size, sha256_of(card), False)
    commit = hashlib.sha1()
    for path in sorted(files):
        commit.update(f"{path}\0{files[path].sha256}\n".encode())
    return Repo(repo_id, commit.hexdigest(), configs, files)


class MockHub:
    def __init__(self, fixtures: Path, work: Path, revision: str, row_group_size: int,
                 shard_rows: int | None, redirect_lfs: bool):
        self.revision = revision
        self.redirect_lfs = redirect_lfs
        self.repos: dict[str, Repo] = {}
        for folder in sorted(p for p in fixtures.iterdir() if p.is_dir() and "--" in p.name):
            repo = build_repo(folder, work / folder.name, row_group_size, shard_rows)
            self.repos[repo.id] = repo
        self.by_sha256 = {f.sha256: f for r in self.repos.values() for f in r.files.values() if f.lfs}
        self.lock = threading.Lock()
        self.stats = {"files_served": 0, "bytes_served": 0, "api_calls": 0, "not_found": 0, "served": {}}

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.stats[key] += n

    def served(self, path: str, nbytes: int) -> None:
        with self.lock:
            self.stats["files_served"] += 1
            self.stats["bytes_served"] += nbytes
            self.stats["served"][path] = self.stats["served"].get(path, 0) + 1

    def commit(self, repo: Repo, revision: str) -> str | None:
        return repo.sha if revision in (self.revision, repo.sha) else None

    def info(self, repo: Repo) -> dict:
        return {"_id": hashlib.sha1(repo.id.encode()).hexdigest()[:24], "id": repo.id, "author": repo.id.split("/")[0],
                "sha": repo.sha, "private": False, "gated": False, "disabled": False,
                "cardData": {"configs": repo.configs},
                "siblings": [repo.files[p].sibling() for p in sorted(repo.files)]}


def make_handler(hub: MockHub, quiet: bool):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "assay-mock-hub/1"

        def log_message(self, fmt, *args):
            if not quiet:
                sys.stderr.write("mock hub: " + (fmt % args) + "\n")

        def send_json(self, status: int, obj: dict, headers: dict | None = None) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def not_found(self, message: str, code: str) -> None:
            hub.count("not_found")
            self.send_json(404, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            url = urlsplit(self.path)
            raw = [s for s in url.path.split("/") if s != ""]
            seg = [unquote(s) for s in raw]
            if seg[:2] == ["_mock", "stats"]:
                with hub.lock:
                    return self.send_json(200, json.loads(json.dumps(hub.stats)))
            if len(seg) >= 4 and seg[:2] == ["api", "datasets"]:
                return self.api(seg[2] + "/" + seg[3], seg[4:], parse_qs(url.query))
            if len(seg) >= 6 and seg[0] == "datasets" and seg[3] == "resolve":
                return self.resolve(seg[1] + "/" + seg[2], seg[4], "/".join(seg[5:]))
            if len(seg) == 2 and seg[0] == "lfs":
                f = hub.by_sha256.get(seg[1])
                if f is None:
                    return self.not_found("Entry not found", "EntryNotFound")
                return self.send_file(f, f"lfs/{seg[1]}", {})
            return self.not_found(f"no such route: {url.path}", "NotFound")

        def api(self, repo_id: str, rest: list[str], query: dict) -> None:
            hub.count("api_calls")
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self.not_found("Repository not found", "RepoNotFound")
            if rest == []:
                revision = hub.revision
            elif len(rest) == 2 and rest[0] == "revision":
                revision = rest[1]
            else:
                return self.not_found(f"no such route for {repo_id}: {'/'.join(rest)}", "NotFound")
            if hub.commit(repo, revision) is None:
                return self.not_found(f"Invalid rev id: {revision}", "RevisionNotFound")
            self.send_json(200, hub.info(repo))

        def resolve(self, repo_id: str, revision: str, path: str) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self.not_found("Repository not found", "RepoNotFound")
            commit = hub.commit(repo, revision)
            if commit is None:
                return self.not_found(f"Invalid rev id: {revision}", "RevisionNotFound")
            f = repo.files.get(path)
            if f is None:
                return self.not_found("Entry not found", "EntryNotFound")
            headers = {"X-Repo-Commit": commit, "ETag": f'"{f.sha256 if f.lfs else git_blob_id(f.local.read_bytes())}"'}
            if f.lfs:
                headers.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size)})
            if f.lfs and hub.redirect_lfs:
                self.send_response(302)
                self.send_header("Location", f"/lfs/{f.sha256}?repo={quote(repo_id)}")
                self.send_header("Content-Length", "0")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                return
            self.send_file(f, f"{repo_id}/{path}", headers)

        def send_file(self, f: RepoFile, label: str, headers: dict) -> None:
            start, end = 0, f.size - 1
            rng = self.headers.get("Range")
            partial = False
            if rng:
                try:
                    unit, spec = rng.split("=", 1)
                    a, b = spec.split(",")[0].strip().split("-", 1)
                    if unit.strip() != "bytes" or a == "":
                        raise ValueError
                    start = int(a)
                    end = min(int(b), f.size - 1) if b else f.size - 1
                except ValueError:
                    return self.send_json(400, {"error": f"unsupported Range: {rng}"})
                if start >= f.size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{f.size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                partial = True
            length = end - start + 1
            self.send_response(206 if partial else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            if partial:
                self.send_header("Content-Range", f"bytes {start}-{end}/{f.size}")
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                return
            with f.local.open("rb") as fh:
                fh.seek(start)
                self.wfile.write(fh.read(length))
            hub.served(label, length)

    return Handler


def stop(signum, frame):
    raise KeyboardInterrupt  # leave serve_forever and remove the temporary folder


def main() -> int:
    ap = argparse.ArgumentParser(description="A mock Hugging Face Hub serving JSONL fixtures as parquet.")
    ap.add_argument("--fixtures", type=Path, default=ROOT / "tests" / "fixtures" / "hub",
                    help="folder of <owner>--<name>/<config>/<split>.jsonl (default: tests/fixtures/hub)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    ap.add_argument("--revision", default="main", help="the branch name that resolves (default main)")
    ap.add_argument("--row-group-size", type=int, default=100, help="parquet rows per row group (default 100)")
    ap.add_argument("--shard-rows", type=int, help="split each split into files of this many rows")
    ap.add_argument("--redirect-lfs", action="store_true", help="answer parquet downloads with a 302, as the Hub does")
    ap.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    args = ap.parse_args()
    if not args.fixtures.is_dir():
        raise SystemExit(f"no fixtures folder at {args.fixtures}")
    work = Path(tempfile.mkdtemp(prefix="mock-hub-"))
    try:
        hub = MockHub(args.fixtures, work, args.revision, args.row_group_size, args.shard_rows, args.redirect_lfs)
        server = ThreadingHTTPServer((args.host, args.port), make_handler(hub, args.quiet))
        host, port = server.server_address[:2]
        n_files = sum(len(r.files) for r in hub.repos.values())
        print(f"mock hub: {len(hub.repos)} repositories, {n_files} files, from {args.fixtures}",
              file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, stop)
        print(f"http://{host}:{port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
