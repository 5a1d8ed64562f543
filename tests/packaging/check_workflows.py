#!/usr/bin/python3
"""Offline checks of GitHub Actions workflow files (python3-yaml).

    check_workflows.py FILE...

For each file: it parses; has `on` and `jobs`; every job has `runs-on` and a
non-empty `steps` list (or `uses` for a reusable workflow); every step has
exactly one of `uses` / `run`, and `uses` names owner/repo@ref; `needs` name
existing jobs without cycles; job-level `if` does not read `secrets` (GitHub
rejects that); `${{ needs.J.outputs.O }}` names a job in `needs` and an
output it declares; `${{ steps.S.* }}` names an earlier step id of the job;
every `run` script passes `bash -n` (expressions replaced by a word).

Then what ech3's two workflows must do (ci.yml: `make test` on Debian 12;
release.yml: tags v*, multi-arch image with the docker actions, the .deb on
the release, a deploy gated on CLAWCLOUD_KUBECONFIG with `kubectl set image`
and `kubectl rollout status --timeout`).

Prints `ok   ...` / `FAIL ...` lines; exit status 1 if anything failed.
"""

import os
import re
import subprocess
import sys

import yaml

EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)
USES = re.compile(r"^(docker://\S+|\./\S*|[\w.-]+/[\w.-]+(/[\w./-]+)?@[\w.-]+)$")
failed = 0


def report(cond, what):
    global failed
    print("%s %s" % ("ok  " if cond else "FAIL", what))
    if not cond:
        failed += 1
    return cond


def on_of(doc):
    # YAML 1.1 reads a bare `on` key as the boolean true
    return doc.get("on", doc.get(True))


def strings(node):
    """Every string in a YAML tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def check_file(path):
    name = os.path.basename(path)
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except yaml.YAMLError as e:
        report(False, "%s: parses (%s)" % (name, e))
        return None
    if not report(isinstance(doc, dict), "%s: parses to a mapping" % name):
        return None
    report(on_of(doc) is not None, "%s: has `on`" % name)
    jobs = doc.get("jobs")
    if not report(isinstance(jobs, dict) and jobs, "%s: has jobs" % name):
        return doc

    problems = []
    for jid, job in jobs.items():
        where = "%s: job %s" % (name, jid)
        if not isinstance(job, dict):
            problems.append("%s is not a mapping" % where)
            continue
        if "uses" in job:  # a reusable workflow call
            continue
        if "runs-on" not in job:
            problems.append("%s has no runs-on" % where)
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            problems.append("%s has no steps" % where)
            steps = []
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else list(needs)
        for n in needs:
            if n not in jobs:
                problems.append("%s needs unknown job %s" % (where, n))
        cond = job.get("if")
        if isinstance(cond, str) and "secrets." in cond:
            problems.append("%s: job-level if reads secrets (not allowed)" % where)
        # needs.X.outputs.Y anywhere in the job
        for s in strings(job):
            for expr in EXPR.findall(s):
                for j, o in re.findall(r"needs\.([\w-]+)\.outputs\.([\w-]+)", expr):
                    if j not in needs:
                        problems.append("%s: needs.%s without needs: %s" % (where, j, j))
                    elif o not in (jobs.get(j) or {}).get("outputs", {}):
                        problems.append("%s: job %s has no output %s" % (where, j, o))
        # steps.ID references: only to earlier steps of this job
        seen = set()
        refs_in_outputs = [r for s in strings(job.get("outputs", {}))
                           for e in EXPR.findall(s)
                           for r in re.findall(r"steps\.([\w-]+)\.", e)]
        all_ids = {st.get("id") for st in steps if isinstance(st, dict)}
        for r in refs_in_outputs:
            if r not in all_ids:
                problems.append("%s: outputs read unknown step %s" % (where, r))
        for i, st in enumerate(steps):
            swhere = "%s step %d (%s)" % (where, i + 1,
                                          st.get("name", st.get("uses", "")) if isinstance(st, dict) else "?")
            if not isinstance(st, dict):
                problems.append("%s is not a mapping" % swhere)
                continue
            if ("uses" in st) == ("run" in st):
                problems.append("%s must have exactly one of uses/run" % swhere)
            if "uses" in st and not USES.match(str(st["uses"])):
                problems.append("%s: uses %r is not owner/repo@ref" % (swhere, st["uses"]))
            for s in strings({k: v for k, v in st.items() if k != "id"}):
                for expr in EXPR.findall(s):
                    for r in re.findall(r"steps\.([\w-]+)\.", expr):
                        if r not in seen:
                            problems.append("%s reads steps.%s before it runs" % (swhere, r))
            if "run" in st:
                script = EXPR.sub("EXPR", str(st["run"]))
                p = subprocess.run(["bash", "-n"], input=script, text=True,
                                   capture_output=True)
                if p.returncode != 0:
                    problems.append("%s: bash -n: %s" % (swhere, p.stderr.strip()))
            if st.get("id"):
                seen.add(st["id"])
    # needs cycles
    graph = {j: ([v.get("needs")] if isinstance(v.get("needs"), str) else list(v.get("needs", [])))
             for j, v in jobs.items() if isinstance(v, dict)}
    state = {}

    def cyclic(j):
        if state.get(j) == 1:
            return True
        if state.get(j) == 2:
            return False
        state[j] = 1
        if any(cyclic(n) for n in graph.get(j, []) if n in graph):
            return True
        state[j] = 2
        return False

    if any(cyclic(j) for j in graph):
        problems.append("%s: needs form a cycle" % name)
    for p in problems:
        print("     " + p)
    report(not problems, "%s: jobs, steps, needs, outputs and run scripts (%d jobs)"
           % (name, len(jobs)))
    return doc


def all_text(job):
    return "\n".join(strings(job))


def check_ci(doc):
    on = on_of(doc) or {}
    report("push" in on and "pull_request" in on, "ci.yml: runs on push and pull_request")
    jobs = doc.get("jobs", {})
    test = [j for j in jobs.values()
            if isinstance(j, dict) and re.search(r"(^|\n)\s*make test\s*($|\n)", all_text(j))]
    report(bool(test), "ci.yml: a job runs `make test`")
    if test:
        c = test[0].get("container")
        image = c.get("image") if isinstance(c, dict) else c
        report(isinstance(image, str) and image.startswith("debian:bookworm"),
               "ci.yml: make test runs in a debian:bookworm container")
        report("ubuntu" in str(test[0].get("runs-on")), "ci.yml: on an ubuntu runner")


def check_release(doc):
    on = on_of(doc) or {}
    tags = (on.get("push") or {}).get("tags", []) if isinstance(on, dict) else []
    report("v*" in tags, "release.yml: runs on tags v*")
    jobs = doc.get("jobs", {})
    uses = {st.get("uses", "").split("@")[0]
            for j in jobs.values() if isinstance(j, dict)
            for st in j.get("steps", []) if isinstance(st, dict)}
    for a in ("docker/setup-qemu-action", "docker/setup-buildx-action",
              "docker/build-push-action"):
        report(a in uses, "release.yml: uses %s" % a)
    build = [st for j in jobs.values() if isinstance(j, dict)
             for st in j.get("steps", []) if isinstance(st, dict)
             and st.get("uses", "").startswith("docker/build-push-action")]
    w = build[0].get("with", {}) if build else {}
    plats = str(w.get("platforms", ""))
    report("linux/amd64" in plats and "linux/arm64" in plats,
           "release.yml: builds linux/amd64 and linux/arm64")
    report(str(w.get("push")).lower() == "true" and "ghcr.io" in all_text(doc),
           "release.yml: pushes to ghcr.io")
    text = all_text(doc)
    report("make -f packaging/packaging.mk deb" in text or "make deb" in text,
           "release.yml: builds the .deb")
    report(re.search(r"gh release (create|upload)[^\n]*\.deb", text) is not None,
           "release.yml: attaches the .deb to the release")
    dep = [(jid, j) for jid, j in jobs.items()
           if isinstance(j, dict) and "kubectl" in all_text(j)]
    if report(bool(dep), "release.yml: a deploy job runs kubectl"):
        jid, j = dep[0]
        cond = str(j.get("if", ""))
        gate = re.search(r"needs\.([\w-]+)\.outputs\.([\w-]+)", cond)
        gated = False
        if gate:
            src = jobs.get(gate.group(1), {})
            out = str(src.get("outputs", {}).get(gate.group(2), ""))
            sid = re.search(r"steps\.([\w-]+)\.", out)
            step = [s for s in src.get("steps", []) if s.get("id") == (sid.group(1) if sid else None)]
            gated = bool(step) and "CLAWCLOUD_KUBECONFIG" in all_text(step[0])
        report(gated, "release.yml: %s runs only when CLAWCLOUD_KUBECONFIG is set" % jid)
        t = all_text(j)
        report("kubectl" in t and "set image" in t and "deployment/" in t,
               "release.yml: %s runs kubectl set image deployment/..." % jid)
        report(re.search(r"rollout status[^\n]*--timeout=\d+", t) is not None,
               "release.yml: %s waits with kubectl rollout status --timeout" % jid)
        report(re.search(r"rollout status.*\n(.*\n){0,3}.*exit 1", t) is not None
               or "set -e" in t, "release.yml: %s fails when the rollout does not complete" % jid)
        report("vars.CLAWCLOUD_APP" in t and "vars.CLAWCLOUD_CONTAINER" in t,
               "release.yml: app and container names from repository variables")


def main():
    docs = {}
    for path in sys.argv[1:]:
        docs[os.path.basename(path)] = check_file(path)
    if docs.get("ci.yml"):
        check_ci(docs["ci.yml"])
    if docs.get("release.yml"):
        check_release(docs["release.yml"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
