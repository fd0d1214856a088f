"""A corpus of bad input files, as people send them: empty, truncated, in the wrong encoding,
binary, with the wrong columns, text in number columns, impossible dates, YAML that is not a
mapping, invalid JSON, a workbook without rows — each in the file types the commands take.

``make_corpus(folder)`` writes the files and returns ``{name: path}``; ``make_dirs(folder,
corpus)`` writes enterprise/demo folders that each carry one bad file among good ones and returns
``{name: (folder, the bad file's name)}``.  Everything is deterministic.
"""
from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path

#: a small, valid enterprise folder (only the required columns) the bad folders start from
ENTERPRISE = {"enterprise_id": "ent-a", "name_zh": "甲企业"}
BOUNDARY = "node_id,parent_id,level\nENT,,enterprise\nF01,ENT,facility\n"
METERS = "meter_id,node_id,unit\nM0001,F01,kWh\nM0002,F01,Nm3\n"
READINGS = "meter_id,ts,value\nM0001,2025-03-01 00:00,1.5\nM0001,2025-03-01 00:15,2.5\n"
ACTIVITY = ("source,item,quantity,unit,period\n"
            "purchased_electricity,grid,100,MWh,2025-03\ncombustion,natural_gas,2,万Nm3,2025-03\n")

# one header that carries the columns of every table the commands read (readings, activity,
# meters, boundary), so one file is "text in number columns" or "impossible dates" for each of them
_ALL = "meter_id,node_id,parent_id,level,unit,ts,value,source,item,quantity,period,rollover,installed\n"
TEXT_IN_NUMBERS = _ALL + "".join(
    f"M000{i},F01,ENT,facility,kWh,2025-03-01 00:{15 * i:02d},{v},purchased_electricity,grid,{q},2025-03,{r},2024-01-01\n"
    for i, (v, q, r) in enumerate([("twelve", "十二", "big"), ("\"1,5\"", "abc", "many"), ("N/A", "--", "?")], start=1))
IMPOSSIBLE_DATES = _ALL + "".join(
    f"M000{i},F01,ENT,facility,kWh,{ts},1.0,purchased_electricity,grid,10,{p},,{d}\n"
    for i, (ts, p, d) in enumerate([("2025-02-30 00:00", "2025-13", "2025-02-30"),
                                    ("2025-03-01 25:61", "2025-00", "2025-13-01"),
                                    ("2025-02-29 12:00", "2025-99", "31/31/2025")], start=1))


def _xlsx(rows: list[list] | None, title: str = "Sheet1") -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title
    for r in rows or []:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _table(text: str) -> list[list]:
    return [line.split(",") for line in text.strip().splitlines()]


def _parquet(text: str) -> bytes:
    import pandas as pd

    buf = io.BytesIO()
    pd.read_csv(io.StringIO(text), dtype=str).to_parquet(buf, index=False)
    return buf.getvalue()


def corpus_bytes() -> dict[str, bytes]:
    """name → content of every bad file."""
    rnd = random.Random(20250230)
    junk = bytes(rnd.randrange(256) for _ in range(4096))
    zh = ("meter_id,node_id,unit,备注\n" + "".join(f"M{i:04d},F01,kWh,电表{i}号\n" for i in range(1, 40))).encode()
    cut = zh.index("电表39".encode()) + 1                         # in the middle of 电 (3 bytes in UTF-8)
    gbk = ("meter_id,node_id,unit,备注\nM0001,F01,kWh,一号电表\n").encode("gbk")
    # Big5 bytes read as GB18030 (every Big5 pair is a GB18030 pair): the headers come out as nonsense
    big5 = ("錶號,節點,單位,備註\nM0001,F01,kWh,一號電錶\n").encode("big5")
    zip_buf = io.BytesIO()
    with zipfile.ZipFile(zip_buf, "w") as z:
        z.writestr("notes.txt", "this archive is not a workbook")
    parquet = _parquet(READINGS)
    files = {
        # empty, in every type
        **{f"empty.{ext}": b"" for ext in ("csv", "xlsx", "yaml", "json", "pdf", "parquet")},
        # truncated: cut in the middle of a row and of a multi-byte character
        "truncated.csv": zh[:cut],
        "truncated.xlsx": _xlsx(_table(METERS))[:700],
        "truncated.parquet": parquet[: len(parquet) // 2],
        "truncated.json": b'{"enterprise_id": "ent-a", "name_zh": "\xe7\x94',
        # wrong encoding
        "utf16.csv": "\ufeffmeter_id,node_id,unit\nM0001,F01,kWh\n".encode("utf-16"),
        "gbk_with_utf8_bom.csv": b"\xef\xbb\xbf" + gbk,                  # the BOM says UTF-8, the bytes are GBK
        "big5.csv": big5,
        "utf16.yaml": "rules:\n  - name: x\n".encode("utf-16"),
        "utf16.json": json.dumps(ENTERPRISE, ensure_ascii=False).encode("utf-16"),
        # binary junk, also under text names
        "random.csv": junk, "random.xlsx": junk, "random.yaml": junk, "random.json": junk,
        "random.pdf": junk, "random.parquet": junk,
        "png.png": b"\x89PNG\r\n\x1a\n" + junk[:512], "png.csv": b"\x89PNG\r\n\x1a\n" + junk[:512],
        "zip.xlsx": zip_buf.getvalue(), "zip.csv": zip_buf.getvalue(),
        "pdf.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + junk[:512], "pdf.csv": b"%PDF-1.4\n" + junk[:512],
        # wrong columns
        "wrong_columns.csv": b"foo,bar,baz\n1,2,3\n4,5,6\n",
        "wrong_columns.xlsx": _xlsx([["foo", "bar", "baz"], [1, 2, 3]]),
        "wrong_columns.parquet": _parquet("foo,bar\n1,2\n"),
        "wrong_columns.json": json.dumps({"foo": 1, "bar": [2]}).encode(),
        # text in number columns, impossible dates (every row)
        "text_in_numbers.csv": TEXT_IN_NUMBERS.encode(),
        "text_in_numbers.xlsx": _xlsx(_table(TEXT_IN_NUMBERS)),
        "impossible_dates.csv": IMPOSSIBLE_DATES.encode(),
        "impossible_dates.xlsx": _xlsx(_table(IMPOSSIBLE_DATES)),
        # YAML that is not a mapping, invalid YAML, invalid JSON, JSON that is no object
        "not_mapping.yaml": b"- one\n- two\n",
        "invalid.yaml": b"rules: [unclosed\n  - : :\n",
        "invalid.json": b'{"enterprise_id": "ent-a",}',
        "list.json": '["ent-a", "甲企业"]'.encode(),
        # a workbook with no rows
        "no_rows.xlsx": _xlsx(None),
    }
    return files


def make_corpus(folder: Path) -> dict[str, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, data in corpus_bytes().items():
        p = folder / name
        p.write_bytes(data)
        out[name] = p
    return out


def good_enterprise(folder: Path, *, encoding: str = "utf-8", doc: dict | None = None,
                    boundary: str = BOUNDARY, meters: str | None = METERS) -> Path:
    """A hand-written enterprise folder with only the required columns."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "enterprise.json").write_text(json.dumps(doc or ENTERPRISE, ensure_ascii=False), encoding="utf-8")
    (folder / "boundary.csv").write_bytes(boundary.encode(encoding))
    if meters is not None:
        (folder / "meters.csv").write_bytes(meters.encode(encoding))
    return folder


def good_demo_dir(folder: Path) -> Path:
    """A minimal folder in the demo's layout (meters, boundary, readings, activity)."""
    folder = good_enterprise(folder)
    (folder / "readings.parquet").write_bytes(_parquet(READINGS))
    (folder / "activity.csv").write_text(ACTIVITY, encoding="utf-8")
    return folder


#: which bad files go in place of which file of a folder
_DIR_SLOTS = {
    "enterprise.json": (".json", ".csv", ".yaml"),
    "boundary.csv": (".csv",),
    "meters.csv": (".csv",),
    "readings.parquet": (".parquet",),
    "activity.csv": (".csv",),
}
_ENTERPRISE_FILES = ("enterprise.json", "boundary.csv", "meters.csv")


def dir_cases(names, *, demo: bool = False) -> list[tuple[str, str, str]]:
    """(case, the folder's file replaced, the corpus file put there) for :func:`make_dirs`."""
    slots = _DIR_SLOTS if demo else {k: v for k, v in _DIR_SLOTS.items() if k in _ENTERPRISE_FILES}
    return [(f"{'demo' if demo else 'ent'}-{target}-{name}", target, name)
            for target, exts in slots.items() for name in sorted(names) if Path(name).suffix in exts]


def make_dirs(folder: Path, corpus: dict[str, Path], *, demo: bool = False) -> dict[str, tuple[Path, str]]:
    """Folders like a good enterprise (or demo) folder, each with one file replaced by a bad one
    of a matching type: ``{case: (folder, replaced file name)}``."""
    folder = Path(folder)
    out = {}
    for case, target, name in dir_cases(corpus, demo=demo):
        d = folder / case
        (good_demo_dir if demo else good_enterprise)(d)
        (d / target).write_bytes(corpus[name].read_bytes())
        out[case] = (d, target)
    return out
