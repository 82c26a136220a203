#!/usr/bin/env python3
"""Builds the repository's Dockerfile without a Docker engine and runs the image.

    sudo tests/tools/check_container_rootfs.py [--base TAR] [--keep]

Where no Docker engine runs (CI, the development VMs), this interprets the
Dockerfile's instructions itself on Debian 12 root file systems made by
mmdebstrap (--variant=minbase: bookworm-slim's package set), as root:

  FROM debian:bookworm-slim [AS n]  a fresh copy of the minbase tarball
  WORKDIR / COPY [--from=n] / RUN   as Docker does them (RUN: /bin/sh -c in a chroot)
  USER / ENV / CMD / HEALTHCHECK    recorded for the run below
  LABEL / EXPOSE / STOPSIGNAL       noted

then runs the final image like `docker run` would (a chroot, the image's USER,
environment, WORKDIR and CMD, the host's network, -e IMGCLASSD_PORT=<free>):

  1. without a mounted model repository: with the default model staged,
     the HEALTHCHECK passes; without it (models/fashion-mnist not in the
     repository yet), it fails saying why;
  2. with a repository bind-mounted read-only at /models (MobileNet v1 from
     ../shared/imagenet): the HEALTHCHECK fails before the model is loaded
     and passes after, a JPEG is classified through the published port,
     and SIGTERM (the STOPSIGNAL) fails the HEALTHCHECK at once and ends
     the daemon with exit status 0.

Also: ldd inside the runtime file system finds every library, the daemon runs
as the image's non-root user, and the image size is printed.

--base TAR reuses a `mmdebstrap --variant=minbase bookworm TAR` tarball
(default: made once and cached as /var/tmp/imgclassd-bookworm-minbase.tar).
Needs: root, mmdebstrap, Debian's package archive; about 1 minute on 2 cores,
plus 1 to make the tarball the first time. Not root: says so in one line and
exits 77 (skipped). No SHARED/imagenet (env IMGCLASS_SHARED, default ../shared):
runs 1, skips 2 saying so in one line, and exits 78 (skipped in part) when 1 passed.
"""
import argparse
import glob
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("IMGCLASS_SHARED", os.path.join(REPO, "..", "shared"))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
failures = []


def say(msg):
    print(f"check_container_rootfs: {msg}", flush=True)


def check(ok, msg):
    say(("ok: " if ok else "FAIL: ") + msg)
    if not ok:
        failures.append(msg)
    return ok


class Stage:
    def __init__(self, root, name):
        self.root, self.name = root, name
        self.workdir, self.user, self.env = "/", "0:0", {}
        self.cmd = self.healthcheck = None
        self.mounts = []

    def path(self, p):
        p = p if p.startswith("/") else os.path.join(self.workdir, p)
        return os.path.join(self.root, os.path.normpath(p).lstrip("/"))


def logical_lines(text):
    """Dockerfile lines with continuations joined and comments dropped."""
    out, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("#") or (not s and not cur):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        if cur.strip():
            out.append(cur.strip())
        cur = ""
    return out


def mount(stage, *args):
    subprocess.run(["mount", *args], check=True)
    stage.mounts.append(args[-1])


def unmount_all(stages):
    for st in reversed(stages):
        for m in reversed(st.mounts):
            subprocess.run(["umount", "-l", m], check=False)
        st.mounts.clear()


def new_stage(base_tar, work, n, name):
    root = os.path.join(work, f"stage{n}")
    os.makedirs(root)
    subprocess.run(["tar", "-xf", base_tar, "-C", root], check=True)
    st = Stage(root, name)
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
    mount(st, "-t", "proc", "proc", os.path.join(root, "proc"))
    return st


def copy_into(src, dest, dest_is_dir):
    """COPY semantics: a directory's contents, or a file, into dest."""
    if os.path.isdir(src):
        os.makedirs(dest, exist_ok=True)
        subprocess.run(["cp", "-a", "--no-preserve=ownership", src + "/.", dest], check=True)
    else:
        target = os.path.join(dest, os.path.basename(src)) if dest_is_dir else dest
        os.makedirs(os.path.dirname(target), exist_ok=True)
        subprocess.run(["cp", "-a", "--no-preserve=ownership", src, target], check=True)


def build(dockerfile, base_tar, work):
    stages, by_name = [], {}
    text = open(dockerfile).read()
    for line in logical_lines(text):
        word, _, rest = line.partition(" ")
        word = word.upper()
        st = stages[-1] if stages else None
        if word == "FROM":
            parts = rest.split()
            if parts[0] != "debian:bookworm-slim":
                sys.exit(f"only debian:bookworm-slim is emulated, not {parts[0]}")
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            st = new_stage(base_tar, work, len(stages), name)
            stages.append(st)
            if name:
                by_name[name] = st
            say(f"FROM {rest}")
        elif word == "WORKDIR":
            st.workdir = os.path.normpath(os.path.join(st.workdir, rest))
            os.makedirs(st.path(st.workdir), exist_ok=True)
        elif word == "COPY":
            args = shlex.split(rest)
            src_root = REPO
            while args[0].startswith("--"):
                opt = args.pop(0)
                if opt.startswith("--from="):
                    src_root = by_name[opt.split("=", 1)[1]].root
                else:
                    sys.exit(f"COPY option {opt} is not emulated")
            *srcs, dest = args
            matches = []
            for s in srcs:
                pattern = os.path.join(src_root, s.lstrip("/"))
                found = sorted(glob.glob(pattern.rstrip("/"))) if any(
                    c in s for c in "*?[") else ([pattern.rstrip("/")] if os.path.exists(pattern) else None)
                if found is None:
                    sys.exit(f"COPY {s}: not found in {src_root}")
                matches += found  # a wildcard may match nothing (BuildKit)
            dest_is_dir = dest.endswith("/") or len(matches) > 1
            for m in matches:
                copy_into(m, st.path(dest), dest_is_dir)
            say(f"COPY {rest}  ({len(matches)} source(s))")
        elif word == "RUN":
            say(f"RUN {rest[:100]}{'...' if len(rest) > 100 else ''}")
            env = {"PATH": PATH, "HOME": "/root", **st.env}
            t0 = time.time()
            r = subprocess.run(["chroot", "--userspec=" + st.user, st.root, "/bin/sh", "-c",
                                f"cd {shlex.quote(st.workdir)} && {rest}"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            tail = "\n".join(r.stdout.splitlines()[-15:])
            if r.returncode != 0:
                print(r.stdout)
                sys.exit(f"RUN failed with status {r.returncode}")
            print("    | " + tail.replace("\n", "\n    | "))
            say(f"    ({time.time() - t0:.0f} s)")
        elif word == "USER":
            user = rest.strip()
            st.user = user if ":" in user else user + ":" + user
        elif word == "ENV":
            for kv in shlex.split(rest):
                k, _, v = kv.partition("=")
                st.env[k] = v
        elif word == "CMD":
            st.cmd = json.loads(rest)
        elif word == "HEALTHCHECK":
            opts, _, cmd = rest.partition("CMD ")
            st.healthcheck = json.loads(cmd)
            say(f"HEALTHCHECK {opts.strip()} {st.healthcheck}")
        elif word in ("LABEL", "EXPOSE", "STOPSIGNAL", "ARG"):
            say(f"{word} {rest}")
        else:
            sys.exit(f"Dockerfile instruction {word} is not emulated")
    return stages


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def as_user(st):
    uid, gid = (int(x) for x in st.user.split(":"))

    def pre():
        os.chroot(st.root)
        os.chdir(st.workdir)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return pre


def healthcheck(st, env):
    r = subprocess.run(st.healthcheck, preexec_fn=as_user(st), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=10)
    return r.returncode, r.stdout.strip()


def http(port, path, body=None, ctype=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers={"Content-Type": ctype} if ctype else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def run_image(st, port, log_path, extra_env):
    env = {"PATH": PATH, "HOSTNAME": "imgclassd", **st.env, "IMGCLASSD_PORT": str(port),
           **extra_env}
    log = open(log_path, "w")
    p = subprocess.Popen(st.cmd, preexec_fn=as_user(st), env=env, stdout=log, stderr=log)
    return p, env


def wait_health(st, env, proc, want, timeout):
    t_end = time.time() + timeout
    while time.time() < t_end:
        rc, out = healthcheck(st, env)
        if (rc == 0) == want:
            return rc, out
        if proc.poll() is not None:
            return rc, out + f" (daemon exited {proc.returncode})"
        time.sleep(0.2)
    return rc, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", help="a mmdebstrap --variant=minbase bookworm tarball")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP check_container_rootfs: needs root (chroot, mount)", flush=True)
        return 77
    work = tempfile.mkdtemp(prefix="imgclassd-ctr.")
    base = a.base or "/var/tmp/imgclassd-bookworm-minbase.tar"
    if not os.path.exists(base):
        if not shutil.which("mmdebstrap"):
            sys.exit("mmdebstrap is not installed (apt-get install mmdebstrap)")
        say(f"making {base} with mmdebstrap (once)")
        subprocess.run(["mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar", "bookworm",
                        base + ".part"], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
        os.rename(base + ".part", base)
    stages = []
    proc = None
    skipped = None
    try:
        stages = build(os.path.join(REPO, "Dockerfile"), base, work)
        img = stages[-1]
        check(img.user not in ("0:0", "root:root") and not img.user.startswith("0:"),
              f"the image runs as a non-root user ({img.user})")
        r = subprocess.run(["chroot", img.root, "ldd", "/usr/local/bin/imgclassd"],
                           stdout=subprocess.PIPE, text=True)
        check(r.returncode == 0 and "not found" not in r.stdout,
              "ldd in the runtime file system finds every library")
        du = subprocess.run(["du", "-sm", "--exclude=proc", img.root], stdout=subprocess.PIPE,
                            text=True).stdout.split()[0]
        say(f"runtime file system: {du} MB (minbase; bookworm-slim drops docs and locales)")

        # 1. The image as built: /models holds the default model, if any.
        port = free_port()
        has_default = os.path.isdir(os.path.join(img.root, "models", "fashion-mnist"))
        proc, env = run_image(img, port, os.path.join(work, "run1.log"), {})
        if has_default:
            rc, out = wait_health(img, env, proc, True, 60)
            check(rc == 0, f"default model: HEALTHCHECK passes ({out or 'exit 0'})")
        else:
            time.sleep(1.5)
            rc, out = healthcheck(img, env)
            check(rc == 1 and "no models" in out,
                  f"no default model staged: HEALTHCHECK fails and says why ({out})")
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=30) == 0, "SIGTERM: exit status 0")

        # 2. A repository mounted at /models (docker run -v repo:/models:ro).
        if not os.path.isdir(os.path.join(SHARED, "imagenet")):
            skipped = (f"SKIP check_container_rootfs (in part): 2 needs {SHARED}/imagenet "
                       f"(SHARED={SHARED}): not found; 1 ran")
        else:
            repo = os.path.join(work, "models")
            mdir = os.path.join(repo, "mobilenet_v1")
            os.makedirs(mdir)
            shutil.copy(os.path.join(SHARED, "imagenet", "mobilenet_v1_0.25_128.onnx"),
                        os.path.join(mdir, "model.onnx"))
            shutil.copy(os.path.join(SHARED, "imagenet", "imagenet_labels.txt"),
                        os.path.join(mdir, "labels.txt"))
            cfg = json.load(open(os.path.join(REPO, "tests", "models", "mobilenet_v1", "config.json")))
            cfg.update(model="model.onnx", labels="labels.txt")
            json.dump(cfg, open(os.path.join(mdir, "config.json"), "w"))
            # Readable by the image's user. Never chmod -R the work folder: the
            # stages have /proc mounted in them.
            os.chmod(work, 0o755)
            subprocess.run(["chmod", "-R", "a+rX", repo], check=True)
            target = os.path.join(img.root, "models")
            mount(img, "--bind", repo, target)
            subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
            port = free_port()
            proc, env = run_image(img, port, os.path.join(work, "run2.log"),
                                  {"IMGCLASSD_DRAIN_GRACE_MS": "2000", "IMGCLASSD_LOG_FORMAT": "json"})
            rc, out = healthcheck(img, env)
            check(rc == 1, f"HEALTHCHECK fails before the daemon is ready ({out})")
            rc, out = wait_health(img, env, proc, True, 60)
            check(rc == 0, "HEALTHCHECK passes once the model is loaded")
            st = open(f"/proc/{proc.pid}/status").read()
            uid_line = next(line for line in st.splitlines() if line.startswith("Uid:"))
            check(uid_line.split()[1] == img.user.split(":")[0],
                  f"the daemon runs as uid {uid_line.split()[1]}")
            jpeg = open(os.path.join(SHARED, "imagenet", "images", "cat.jpg"), "rb").read()
            code, body = http(port, "/v1/models/mobilenet_v1:classify", jpeg, "image/jpeg")
            check(code == 200, f"POST cat.jpg through the published port: {code} {body[:120]!r}")
            t0 = time.time()
            proc.send_signal(signal.SIGTERM)
            rc, out = wait_health(img, env, proc, False, 1.5)
            check(rc == 1 and time.time() - t0 < 1.5,
                  f"SIGTERM: HEALTHCHECK fails at once ({out})")
            code, _ = http(port, "/healthz")
            check(code == 200, "still serving during the drain grace period")
            status = proc.wait(timeout=40)
            check(status == 0, f"SIGTERM: exit status {status} after {time.time() - t0:.1f} s")
            proc = None
            with open(os.path.join(work, "run2.log")) as f:
                lines = [json.loads(line) for line in f if line.strip()]
            check(all("msg" in j or "message" in j or len(j) > 1 for j in lines),
                  f"container log: {len(lines)} JSON lines (IMGCLASSD_LOG_FORMAT=json applied)")
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        unmount_all(stages)
        still = [m.split()[1] for m in open("/proc/mounts") if m.split()[1].startswith(work)]
        if a.keep or still:
            say(f"kept {work}" + (f" (still mounted: {still})" if still else ""))
        else:
            shutil.rmtree(work, ignore_errors=True)
    n_fail = len(failures)
    print(f"check_container_rootfs: {0 if n_fail else 1} passed, {1 if n_fail else 0} failed")
    if skipped:
        print(skipped, flush=True)
    return 1 if n_fail else 78 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
