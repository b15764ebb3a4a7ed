"""Parse-only throughput of `parse_stream` on synthetic inputs (not a test; run it by hand).

    .venv/bin/python tests/ingest/bench_parse.py [repetitions]

HL7: ORU^R01 messages with 7-12 OBX each (10 recognised LOINC codes, hematocrit and temperature mixed in),
full PID with identifiers, `\\r` terminators. NDJSON: LB, AE, EX and VS records in rotation. Each format is
parsed `repetitions` times from memory and the best run is reported, in CPU time of this process
(`time.process_time`), because a shared machine's noise only ever slows a run down.
"""

from __future__ import annotations

import io
import random
import sys
import time

import orjson

from services.ingest.domain import Parsed, ParserConfig, parse_stream

OBSERVATIONS = [
    ("6690-2", "10*3/uL", "4.5-13.5"),
    ("751-8", "10*3/uL", "1.8-8.0"),
    ("770-8", "%", "40-75"),
    ("777-3", "10*3/uL", "150-450"),
    ("718-7", "g/dL", "11.5-15.5"),
    ("731-0", "10*3/uL", "1.0-4.8"),
    ("1742-6", "U/L", "5-40"),
    ("1920-8", "U/L", "5-40"),
    ("1975-2", "mg/dL", "0.1-1.2"),
    ("2160-0", "mg/dL", "0.3-1.0"),
    ("4544-3", "%", "35-45"),
    ("8310-5", "Cel", ""),
]


def hl7_messages(count: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    messages = []
    for n in range(count):
        when = f"202603{1 + n % 28:02d}{rng.randint(6, 18):02d}{rng.randint(0, 59):02d}00"
        segments = [
            f"MSH|^~\\&|LIS|NIHCC-LAB|TRIALWATCH|NIAID|{when}||ORU^R01^ORU_R01|CTRL{n:08d}|P|2.5.1",
            f"PID|1||AD-{n % 8:03d}^^^ANAKINRA-AD^SUBJ~MRN{n}^^^HOSP^MR||Doe^Jane^Q||20110704|F|||"
            "12 Elm St^^Bethesda^MD^20892||(301)555-0100",
            "PV1|1|O|CC^OP^1",
            f"OBR|1|PL{n}|FO-{n}^LIS|57021-8^CBC W Auto Differential panel^LN|||{when}|||||||||||||||{when}||HM|F",
        ]
        for index, (loinc, unit, limits) in enumerate(OBSERVATIONS[: rng.randint(7, 12)], 1):
            value = f"{rng.uniform(0.2, 300):.1f}"
            segments.append(f"OBX|{index}|NM|{loinc}^Test^LN||{value}|{unit}|{limits}|N|||F|||{when}")
        messages.append("\r".join(segments) + "\r")
    return "".join(messages).encode()


def ndjson_records(count: int, seed: int = 2) -> bytes:
    rng = random.Random(seed)
    common = {"STUDYID": "ANAKINRA-AD"}
    templates = [
        {"DOMAIN": "LB", "LBTESTCD": "NEUT", "LBLOINC": "751-8", "LBORRESU": "10^9/L", "LBORNRLO": "1.8",
         "LBORNRHI": "8.0", "LBDTC": "2026-03-10T08:15:00"},
        {"DOMAIN": "AE", "AETERM": "runny nose", "AEDECOD": "Upper respiratory infection",
         "AESOC": "Infections and infestations", "AETOXGR": "1", "AESER": "N", "AEREL": "UNLIKELY RELATED",
         "AEOUT": "RECOVERED/RESOLVED", "AESTDTC": "2026-03-12", "RECEIVEDDTC": "2026-03-13T09:12:00Z"},
        {"DOMAIN": "EX", "EXOCCUR": "Y", "EXDOSE": 135, "EXDOSU": "mg", "EXSTDTC": "2026-03-03T08:00:00"},
        {"DOMAIN": "VS", "VSTESTCD": "TEMP", "VSORRESU": "C", "VSDTC": "2026-03-05T07:30:00"},
    ]  # fmt: skip
    lines = []
    for n in range(count):
        data = common | templates[n % 4] | {"USUBJID": f"AD-{n % 8:03d}", "RECID": f"R-{n}"}
        if data["DOMAIN"] == "LB":
            data |= {"LBORRES": f"{rng.uniform(0.2, 9):.2f}", "LBREFID": f"SPC-{n}"}
        elif data["DOMAIN"] == "VS":
            data["VSORRES"] = f"{rng.uniform(36, 40):.1f}"
        lines.append(orjson.dumps(data))
    return b"\n".join(lines) + b"\n"


def best_rate(data: bytes, config: ParserConfig, repetitions: int) -> tuple[float, int, int]:
    best = float("inf")
    records = events = 0
    for _ in range(repetitions):
        records = events = 0
        started = time.process_time()
        for result in parse_stream(io.BytesIO(data), config, name="bench"):
            records += 1
            events += len(result.events) if isinstance(result, Parsed) else 0
        best = min(best, time.process_time() - started)
    return records / best, records, events


def main() -> None:
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    config = ParserConfig(frozenset({"ANAKINRA-AD"}), "ANAKINRA-AD")
    for label, data in (("HL7 ORU^R01 messages", hl7_messages(2000)), ("NDJSON records", ndjson_records(10000))):
        rate, records, events = best_rate(data, config, repetitions)
        detail = f"{records} records, {events} events per run, best of {repetitions}"
        print(f"{label}: {rate:,.0f}/s of CPU, parse-only ({detail})")


if __name__ == "__main__":
    main()
