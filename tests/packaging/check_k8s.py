#!/usr/bin/python3
"""Offline checks of ech3's Kubernetes manifests (python3-yaml).

    check_k8s.py DIR [DOCKERFILE]

Every document: apiVersion, kind, metadata.name, and the fields its kind
requires; then how they fit together: the selectors pick the pod template's
labels, ports are named and exist, the HPA and PDB point at the Deployment,
the Secret key the Deployment reads exists in the example; and what ech3
needs: /healthz liveness and /readyz readiness, a preStop sleep, a grace
period covering preStop + shutdown_timeout + margin, non-root (the image's
uid), read-only root, no privilege escalation, resources, workers within the
CPU limit, TOKEN from a Secret, no Service links.

Prints `ok   ...` / `FAIL ...` lines; exit status 1 if anything failed.
"""

import glob
import math
import os
import re
import sys

import yaml

failed = 0

KINDS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "Secret": "v1",
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
}
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def report(cond, what):
    global failed
    print("%s %s" % ("ok  " if cond else "FAIL", what))
    if not cond:
        failed += 1
    return bool(cond)


def get(d, path, default=None):
    for p in path.split("."):
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def cpu(v):
    s = str(v)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def mem(v):
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    s = str(v)
    for u, f in units.items():
        if s.endswith(u):
            return float(s[: -len(u)]) * f
    return float(s)


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def main():
    d = sys.argv[1]
    dockerfile = sys.argv[2] if len(sys.argv) > 2 else None
    docs = []
    for path in sorted(glob.glob(os.path.join(d, "*.yaml")) + glob.glob(os.path.join(d, "*.yml"))):
        name = os.path.basename(path)
        try:
            with open(path) as f:
                ds = [x for x in yaml.safe_load_all(f) if x is not None]
        except yaml.YAMLError as e:
            report(False, "%s parses (%s)" % (name, e))
            continue
        for x in ds:
            docs.append((name, x))
        report(bool(ds), "%s parses (%d documents)" % (name, len(ds)))

    by_kind = {}
    for name, x in docs:
        kind = x.get("kind") if isinstance(x, dict) else None
        where = "%s %s/%s" % (name, kind, get(x, "metadata.name", ""))
        ok = isinstance(x, dict) and kind in KINDS and x.get("apiVersion") == KINDS[kind]
        report(ok, "%s: apiVersion %s for kind %s" % (where, x.get("apiVersion") if isinstance(x, dict) else "?", kind))
        if kind != "Kustomization":
            n = get(x, "metadata.name")
            report(isinstance(n, str) and NAME.match(n), "%s: metadata.name is a DNS label" % where)
        by_kind.setdefault(kind, []).append((name, x))

    deps = by_kind.get("Deployment", [])
    if not report(len(deps) == 1, "one Deployment"):
        return 1
    _, dep = deps[0]
    dname = get(dep, "metadata.name")
    spec = dep.get("spec", {})
    tmpl_labels = get(spec, "template.metadata.labels", {}) or {}
    sel = get(spec, "selector.matchLabels", {})
    report(matches(sel, tmpl_labels), "Deployment: selector matches the pod template labels")
    pod = get(spec, "template.spec", {})
    cs = pod.get("containers") or []
    if not report(len(cs) >= 1 and all(c.get("name") and c.get("image") for c in cs),
                  "Deployment: containers have name and image"):
        return 1
    c = cs[0]
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    report(ports.get("http") == 8080, "Deployment: container port http = 8080")
    env = {e["name"]: e for e in c.get("env", [])}
    report(all(re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", n) for n in env), "Deployment: env names are valid")
    report(env.get("PORT", {}).get("value") == str(ports.get("http")),
           "Deployment: PORT matches the container port")

    def probe(kind, path):
        p = c.get(kind) or {}
        hg = p.get("httpGet") or {}
        return hg.get("path") == path and (hg.get("port") in ports or hg.get("port") in ports.values())

    report(probe("livenessProbe", "/healthz"), "Deployment: livenessProbe GET /healthz on a container port")
    report(probe("readinessProbe", "/readyz"), "Deployment: readinessProbe GET /readyz on a container port")
    sp = c.get("startupProbe")
    report(sp is None or probe("startupProbe", "/healthz"), "Deployment: startupProbe (if any) GET /healthz")

    cmd = get(c, "lifecycle.preStop.exec.command") or []
    m = re.match(r"^\d+$", str(cmd[-1])) if cmd else None
    pre = int(cmd[-1]) if m and "sleep" in " ".join(map(str, cmd)) else None
    pre = pre if pre is not None else get(c, "lifecycle.preStop.sleep.seconds")
    report(pre is not None and pre > 0, "Deployment: preStop sleeps (%s s)" % pre)
    shutdown = int(env.get("ECH3_SHUTDOWN_TIMEOUT", {}).get("value", 25))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    need = (pre or 0) + shutdown + 5
    report(grace >= need, "Deployment: terminationGracePeriodSeconds %s >= preStop %s + shutdown_timeout %s + 5"
           % (grace, pre, shutdown))
    report(grace <= need + 30, "Deployment: grace period not far above what the drain needs (%s s)" % need)

    psc = pod.get("securityContext", {}) or {}
    csc = c.get("securityContext", {}) or {}

    def sc(key):
        return csc.get(key, psc.get(key))

    report(sc("runAsNonRoot") is True, "Deployment: runAsNonRoot")
    uid = sc("runAsUser")
    if dockerfile:
        m = re.search(r"^USER\s+(\d+)", open(dockerfile).read(), re.M)
        report(m and uid == int(m.group(1)), "Deployment: runAsUser %s is the image's USER" % uid)
    report(csc.get("readOnlyRootFilesystem") is True, "Deployment: readOnlyRootFilesystem")
    report(csc.get("allowPrivilegeEscalation") is False, "Deployment: allowPrivilegeEscalation false")
    report("ALL" in (get(csc, "capabilities.drop") or []), "Deployment: drops all capabilities")
    report(pod.get("enableServiceLinks") is False,
           "Deployment: enableServiceLinks false (no ECH3_PORT=tcp://... from a Service named ech3)")
    res = c.get("resources", {}) or {}
    rq, lm = res.get("requests", {}) or {}, res.get("limits", {}) or {}
    report(all(k in rq for k in ("cpu", "memory")) and "memory" in lm,
           "Deployment: cpu/memory requests and a memory limit")
    if "cpu" in rq and "cpu" in lm:
        report(cpu(rq["cpu"]) <= cpu(lm["cpu"]), "Deployment: cpu request <= limit")
    if "memory" in rq and "memory" in lm:
        report(mem(rq["memory"]) <= mem(lm["memory"]), "Deployment: memory request <= limit")
    w = env.get("ECH3_WORKERS", {}).get("value")
    if "cpu" in lm:
        report(w is not None and 1 <= int(w) <= max(1, math.ceil(cpu(lm["cpu"]))),
               "Deployment: ECH3_WORKERS %s within the CPU limit %s" % (w, lm["cpu"]))
    tok = get(env.get("TOKEN", {}), "valueFrom.secretKeyRef") or {}
    report(tok.get("name") and tok.get("key"), "Deployment: TOKEN from a Secret (%s/%s)"
           % (tok.get("name"), tok.get("key")))
    secrets = by_kind.get("Secret", [])
    report(any(get(s, "metadata.name") == tok.get("name") and
               tok.get("key") in ((s.get("stringData") or {}) | (s.get("data") or {}))
               for _, s in secrets), "the example Secret has that key")
    strat = get(spec, "strategy.rollingUpdate", {}) or {}
    report(str(strat.get("maxUnavailable", "25%")) in ("0", "0%"),
           "Deployment: rolling updates keep every replica until its successor is ready")

    for name, svc in by_kind.get("Service", []):
        report(matches(get(svc, "spec.selector"), tmpl_labels), "Service %s: selector picks the pods" % get(svc, "metadata.name"))
        for p in get(svc, "spec.ports", []) or []:
            t = p.get("targetPort")
            report(p.get("port") and (t in ports or t in ports.values()),
                   "Service %s: port %s -> targetPort %s exists" % (get(svc, "metadata.name"), p.get("port"), t))
    report(bool(by_kind.get("Service")), "a Service")

    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    report(bool(hpas), "a HorizontalPodAutoscaler")
    for _, h in hpas:
        ref = get(h, "spec.scaleTargetRef", {}) or {}
        report(ref.get("kind") == "Deployment" and ref.get("name") == dname and ref.get("apiVersion") == "apps/v1",
               "HPA: scaleTargetRef is the Deployment")
        lo, hi = get(h, "spec.minReplicas", 1), get(h, "spec.maxReplicas")
        report(isinstance(hi, int) and 1 <= lo <= hi, "HPA: 1 <= minReplicas %s <= maxReplicas %s" % (lo, hi))
        mets = get(h, "spec.metrics", []) or []
        report(bool(mets), "HPA: has metrics")
        for mt in mets:
            r = get(mt, "resource.name")
            if r:
                report(r in rq, "HPA: %s utilization has a %s request to be relative to" % (r, r))
        pdbs = by_kind.get("PodDisruptionBudget", [])
        for _, p in pdbs:
            ma = get(p, "spec.minAvailable")
            report(ma is None or (isinstance(ma, int) and ma < lo),
                   "PDB: minAvailable leaves room to drain at minReplicas")

    pdbs = by_kind.get("PodDisruptionBudget", [])
    report(bool(pdbs), "a PodDisruptionBudget")
    for _, p in pdbs:
        s = get(p, "spec", {}) or {}
        report(("minAvailable" in s) != ("maxUnavailable" in s), "PDB: exactly one of minAvailable/maxUnavailable")
        report(matches(get(s, "selector.matchLabels"), tmpl_labels), "PDB: selector picks the pods")

    for name, k in by_kind.get("Kustomization", []):
        rs = k.get("resources", []) or []
        report(all(os.path.exists(os.path.join(d, r)) for r in rs), "%s: resources exist" % name)
        report(not any("secret" in r for r in rs), "%s: the example Secret is not applied" % name)
        imgs = [i.get("name") for i in k.get("images", []) or []]
        report(all(any(ct.get("image", "").split(":")[0] == i for ct in cs) for i in imgs),
               "%s: images name the Deployment's image" % name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
