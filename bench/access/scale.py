"""Scale on paper (the paper's own limitation, §3.3.3: "users with thousands of friends may
consume client storage"): storage and per-view work of the access-rules model for 10^3 to
10^6 users. Graphs come from networkx's generators (platform.scale.kind, k) up to
`networkx_max_users`; above that only the degrees are drawn, by the same preferential
attachment process (each new user joins k existing users picked in proportion to their
degree), without building the graph (a 10^6-user networkx graph needs gigabytes).
Embeddings are counted, not computed: `embeddings_per_user` x `dim` float32 each."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bench import resultsio
from bench.progress import progress


def degrees(n: int, kind: str, k: int, p: float, seed: int, networkx_max: int) -> tuple[np.ndarray, str]:
    """(degree of every user, how they were drawn)."""
    if n <= networkx_max:
        if kind == "barabasi_albert":
            g = nx.barabasi_albert_graph(n, k, seed=seed)
        elif kind == "watts_strogatz":
            g = nx.watts_strogatz_graph(n, 2 * k, p, seed=seed)
        else:
            g = nx.fast_gnp_random_graph(n, 2 * k / max(1, n - 1), seed=seed)
        return np.fromiter((d for _, d in g.degree()), np.int64, n), f"networkx {kind}"
    if kind != "barabasi_albert":
        rng = np.random.default_rng(seed)
        deg = np.full(n, 2 * k) if kind == "watts_strogatz" else rng.poisson(2 * k, n)
        return deg.astype(np.int64), f"{kind} degrees (no graph built)"
    return preferential_attachment_degrees(n, k, np.random.default_rng(seed)), \
        "preferential-attachment degrees (no graph built)"


def preferential_attachment_degrees(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) int64 degrees of the Barabasi-Albert process, without the graph: user k joins users
    0..k-1; each later user joins k users drawn (with replacement; a user drawn twice is joined
    once) from the list of every edge end so far, i.e. in proportion to their degree
    (networkx's barabasi_albert_graph draws from the same list). Vectorized: the draws are
    positions in that list, and each position drawn is resolved to the user written there by
    pointer jumping (a drawn position lies before the draw), so no Python loop runs per user."""
    if n <= k:
        return np.zeros(n, np.int64)
    joins = n - k - 1                                   # users after the first joiner
    starts = k + 2 * k * (np.arange(joins, dtype=np.int64) + 1)   # where each joiner's block starts
    total = k + 2 * k * (n - k)
    value = np.full(total, -1, np.int64)                # the user at each edge end (-1: a draw, unresolved)
    value[:k] = np.arange(k)                            # the first k users, then user k's block
    value[k:2 * k] = np.arange(k)
    value[2 * k:3 * k] = k
    pointer = np.zeros(total, np.int64)
    if joins:
        draws = (rng.random((joins, k)) * starts[:, None]).astype(np.int64)   # uniform position < block start
        picked_at = starts[:, None] + np.arange(k)
        pointer[picked_at] = draws
        value[picked_at + k] = np.arange(k + 1, n)[:, None]
        todo = picked_at.ravel()
        while len(todo):
            found = value[pointer[todo]]
            value[todo[found >= 0]] = found[found >= 0]
            todo = todo[found < 0]
            pointer[todo] = pointer[pointer[todo]]
    picked = np.vstack([np.arange(k)[None], value[starts[:, None] + np.arange(k)] if joins else np.zeros((0, k), np.int64)])
    picked.sort(axis=1)
    first = np.ones_like(picked, bool)
    first[:, 1:] = picked[:, 1:] != picked[:, :-1]      # a user drawn twice by one joiner counts once
    deg = np.bincount(picked[first], minlength=n).astype(np.int64)
    deg[k:] += k
    return deg
    return deg, "preferential-attachment degrees (no graph built)"


def scale_table(opts: dict, seed: int) -> pd.DataFrame:
    """One row per platform size: friends per user and what follows from them."""
    e = int(opts["embeddings_per_user"]) * int(opts["dim"]) * 4
    faces = float(opts["faces_per_photo"])
    rows = []
    for n in progress(opts["users"], "platform sizes", unit="size"):
        deg, how = degrees(int(n), str(opts["kind"]), int(opts["k"]), float(opts["p"]), seed, int(opts["networkx_max_users"]))
        held = deg + 1  # the user's own embeddings and each friend's
        rows.append({
            "users": int(n), "graph": how, "friends_mean": round(float(deg.mean()), 2),
            "friends_p99": int(np.percentile(deg, 99)), "friends_max": int(deg.max()),
            "client_embedding_bytes_mean": int(held.mean() * e), "client_embedding_bytes_p99": int(np.percentile(held, 99) * e),
            "client_embedding_bytes_max": int(held.max() * e), "server_embedding_bytes": int(n) * e,
            "upload_comparisons_mean": int(faces * held.mean() * int(opts["embeddings_per_user"])),
            "upload_comparisons_max": int(faces * held.max() * int(opts["embeddings_per_user"])),
            # a view: one rule check per face; friends-of-friends rules look through the
            # owner's friend list (a set lookup per friend)
            "view_rule_lookups_mean": round(faces * float(deg.mean()), 1), "view_rule_lookups_max": int(faces * deg.max()),
        })
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, opts: dict) -> str:
    return (f"# Access rules at scale, on paper\n\n{opts['kind']} graphs (k={opts['k']}), "
            f"{opts['embeddings_per_user']} embeddings of {opts['dim']} float32 per user, {opts['faces_per_photo']} "
            "faces per photo. Client = one device holding its user's and all friends' embeddings.\n\n"
            + table.to_markdown(index=False) + "\n")


def plot(table: pd.DataFrame, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    n = table.users
    ax.loglog(n, table.server_embedding_bytes, "k-o", label="server: all enrolments")
    ax.loglog(n, table.client_embedding_bytes_max, "r-s", label="client: the best-connected user")
    ax.loglog(n, table.client_embedding_bytes_p99, "m-^", label="client: 99th percentile")
    ax.loglog(n, table.client_embedding_bytes_mean, "b-v", label="client: mean")
    ax.set_xlabel("users")
    ax.set_ylabel("embedding bytes")
    ax.set_title("Access rules: who stores the embeddings", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    resultsio.write_figure(fig, out, dpi=110)
    plt.close(fig)
