"""Maps from each dataset's native labels to ferlib's canonical order.

Canonical order (:mod:`ferlib.data.labels`)::

    0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger, 7 contempt

Every map below is written out explicitly (no arithmetic on label ids), so that a reader can check
it against the dataset's own documentation line by line. A 7-class run drops contempt (index 7).
"""

from __future__ import annotations

from collections.abc import Mapping

from ferlib.data.labels import CANONICAL_CLASSES, CLASS_INDEX

N, HA, SA, SU, FE, DI, AN, CO = range(8)

#: RAF-DB basic ``EmoLabel/list_patition_label.txt``: 1 surprise, 2 fear, 3 disgust, 4 happiness,
#: 5 sadness, 6 anger, 7 neutral.
RAFDB: Mapping[int, int] = {1: SU, 2: FE, 3: DI, 4: HA, 5: SA, 6: AN, 7: N}

#: The RAN test lists (Challenge-condition-FER-dataset) store RAF-DB's native label minus one.
RAFDB_RAN: Mapping[int, int] = {k - 1: v for k, v in RAFDB.items()}

#: AffectNet ``expression`` column: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust,
#: 6 anger, 7 contempt. 8 none, 9 uncertain and 10 non-face are not expressions and are dropped.
AFFECTNET: Mapping[int, int] = {0: N, 1: HA, 2: SA, 3: SU, 4: FE, 5: DI, 6: AN, 7: CO}
AFFECTNET_DROPPED: Mapping[int, str] = {8: "none", 9: "uncertain", 10: "non-face"}

#: FER-2013 ``emotion`` column: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral.
FER2013: Mapping[int, int] = {0: AN, 1: DI, 2: FE, 3: HA, 4: SA, 5: SU, 6: N}

#: FERPlus ``fer2013new.csv`` vote columns, in file order. ``unknown`` and ``NF`` (not a face)
#: are not expressions: an image whose majority is one of them is dropped.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
FERPLUS: Mapping[str, int] = {
    "neutral": N,
    "happiness": HA,
    "surprise": SU,
    "sadness": SA,
    "anger": AN,
    "disgust": DI,
    "fear": FE,
    "contempt": CO,
}
#: FERPlus as an index 0-7 in vote-column order (used by the RAN FERPlus lists' name prefix).
FERPLUS_INDEX: Mapping[int, int] = {i: FERPLUS[c] for i, c in enumerate(FERPLUS_COLUMNS[:8])}

#: CK+ ``Emotion/..._emotion.txt``: 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy,
#: 6 sadness, 7 surprise.
CKPLUS: Mapping[int, int] = {0: N, 1: AN, 2: CO, 3: DI, 4: FE, 5: HA, 6: SA, 7: SU}

#: KDEF expression codes (characters 5-6 of ``AF01ANS.JPG``).
KDEF: Mapping[str, int] = {"AF": FE, "AN": AN, "DI": DI, "HA": HA, "NE": N, "SA": SA, "SU": SU}
#: KDEF angle codes → yaw in degrees (full left profile -90 ... full right profile +90).
KDEF_ANGLES: Mapping[str, float] = {"FL": -90.0, "HL": -45.0, "S": 0.0, "HR": 45.0, "FR": 90.0}

#: The 0-6 class-folder order of the public MA-Net code (equal to canonical 0-6).
MANET_FOLDERS: Mapping[int, int] = {0: N, 1: HA, 2: SA, 3: SU, 4: FE, 5: DI, 6: AN}

#: Class-folder names seen in SFEW 2.0, CAER-S, FED-RO and similar ImageFolder-style copies,
#: lower-cased. Synonyms map to the same canonical class.
FOLDER_NAMES: Mapping[str, int] = {
    "neutral": N,
    "happy": HA,
    "happiness": HA,
    "sad": SA,
    "sadness": SA,
    "surprise": SU,
    "surprised": SU,
    "fear": FE,
    "fearful": FE,
    "disgust": DI,
    "disgusted": DI,
    "anger": AN,
    "angry": AN,
    "contempt": CO,
}

#: Every named map, for ``ferlib data list`` and the manifests' consistency test.
NATIVE_MAPS: dict[str, Mapping] = {
    "rafdb": RAFDB,
    "rafdb_ran": RAFDB_RAN,
    "affectnet": AFFECTNET,
    "fer2013": FER2013,
    "ferplus": FERPLUS,
    "ferplus_index": FERPLUS_INDEX,
    "ckplus": CKPLUS,
    "kdef": KDEF,
    "manet_folders": MANET_FOLDERS,
    "folder_names": FOLDER_NAMES,
}


def folder_label(name: str) -> int:
    """Canonical label of a class folder such as ``Angry``, ``happy`` or ``3`` (MA-Net order).

    Raises ``KeyError`` with the accepted names when the folder name is not an expression.
    """
    key = name.strip().lower()
    if key in FOLDER_NAMES:
        return FOLDER_NAMES[key]
    if key.isdigit() and int(key) in MANET_FOLDERS:
        return MANET_FOLDERS[int(key)]
    raise KeyError(
        f"class folder {name!r} is not an expression name; expected one of "
        f"{sorted(set(FOLDER_NAMES))} or 0-6 (MA-Net folder order)"
    )


def ferplus_majority(votes: list[float] | tuple[float, ...]) -> int | None:
    """Canonical label of one FERPlus row by majority vote over its 10 columns.

    Returns ``None`` (drop the image) when the largest vote is ``unknown`` or ``NF``, when the
    largest vote is tied between columns, or when there are no votes at all. This is the
    "majority voting" scheme of Barsoum et al. (2016), Sec. 3.
    """
    if len(votes) != len(FERPLUS_COLUMNS):
        raise ValueError(f"FERPlus row needs {len(FERPLUS_COLUMNS)} vote columns, got {len(votes)}")
    top = max(votes)
    if top <= 0:
        return None
    winners = [i for i, v in enumerate(votes) if v == top]
    if len(winners) != 1:
        return None
    column = FERPLUS_COLUMNS[winners[0]]
    return FERPLUS.get(column)


def canonical_name(label: int) -> str:
    return CANONICAL_CLASSES[label]


__all__ = [
    "RAFDB",
    "RAFDB_RAN",
    "AFFECTNET",
    "AFFECTNET_DROPPED",
    "FER2013",
    "FERPLUS",
    "FERPLUS_COLUMNS",
    "FERPLUS_INDEX",
    "CKPLUS",
    "KDEF",
    "KDEF_ANGLES",
    "MANET_FOLDERS",
    "FOLDER_NAMES",
    "NATIVE_MAPS",
    "CLASS_INDEX",
    "folder_label",
    "ferplus_majority",
    "canonical_name",
]
