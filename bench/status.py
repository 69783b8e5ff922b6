"""Status strings of per-face and per-photo result rows, in one place (readers match on them).

A face of an anonymized photo ends in exactly one of these states (pairs.parquet `status`,
the cell's photos.csv counts):
    SWAPPED                       the generator replaced its identity
    "fallback <name>: <why>"      obfuscated by `anonymize.fallback` because the swap failed
    "n/a: <why>"                  the generator cannot run here (the whole cell is n/a)
    "NOT ANONYMIZED: <why>"       nothing could cover it: the face is still real (the worst
                                  outcome; counted and logged as an error)
"""
from __future__ import annotations

SWAPPED = "swapped"
LEFT_REAL = "NOT ANONYMIZED"
FALLBACK = "fallback"

# Per photo (the cell's photos.csv `status`).
PHOTO_ANONYMIZED = "anonymized"          # every face found was swapped or covered
PHOTO_LEFT_REAL = "NOT ANONYMIZED"       # at least one face stayed real (count in `left_real`)
PHOTO_NO_FACE = "no face found"         # no detector found a face: the output is a copy
PHOTO_UNREADABLE = "unreadable"          # no output photo: the file could not be read


# Per (face, recognizer) embedding (bench.embeddings `status`): the face has no landmarks to
# align it by, so no recognizer embeds it (a per-face reason, never the recognizer's).
EMBEDDING_NOT_ALIGNED = "n/a: face not aligned (see failures.csv)"


def fallback_status(fallback: str, reason: str) -> str:
    return f"{FALLBACK} {fallback}: {reason}"


def is_left_real(status: str) -> bool:
    return str(status).startswith(LEFT_REAL)


def is_fallback(status: str) -> bool:
    return str(status).startswith(FALLBACK + " ")

# The faces stage's photos.csv statuses of photos it could read (the others: "unreadable",
# "skipped"): every one of them gets an anonymized photo.
READABLE = ("ok", "no_face")


# A face found in an anonymized photo by the leak check, by how it was treated (the leak
# table's `treatment`): from its source face's pairs.parquet status, "audit" where no inventory
# face lies at its place (covered by the audit, or no face in the original), "unchanged" where
# its pixels are the original's whatever its status.
TREATMENT_SWAPPED = SWAPPED
TREATMENT_FALLBACK = FALLBACK
TREATMENT_LEFT_REAL = "not anonymized"
AUDIT = "audit"
TREATMENT_UNCHANGED = "unchanged"
TREATMENTS = (TREATMENT_SWAPPED, TREATMENT_FALLBACK, AUDIT, TREATMENT_LEFT_REAL, TREATMENT_UNCHANGED)


def treatment(status: str) -> str:
    """The treatment of a pairs.parquet status: swapped, fallback, not anonymized, or the
    status itself (e.g. "n/a: ...") when it is none of them."""
    status = str(status)
    if status == SWAPPED:
        return TREATMENT_SWAPPED
    if is_fallback(status):
        return TREATMENT_FALLBACK
    if is_left_real(status):
        return TREATMENT_LEFT_REAL
    return status
