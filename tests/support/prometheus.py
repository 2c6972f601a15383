"""Reading Prometheus numbers in tests: one scrape's samples, and each worker's own share.

``scrape(url)`` sums the samples of one ``/metrics`` answer by name and labels;
``per_worker(directory, name, **labels)`` reads a multiprocess directory
(``PROMETHEUS_MULTIPROC_DIR``) file by file, so a test can see that every worker
answered some requests before it checks that one scrape reports them all.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families


def _matches(sample_labels: dict[str, str], labels: dict[str, str]) -> bool:
    return all(sample_labels.get(k) == v for k, v in labels.items())


def total(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``, in exposition text."""
    found = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and _matches(sample.labels, labels):
                found += sample.value
    return found


def scrape(url: str) -> str:
    answer = httpx.get(url, timeout=10)
    answer.raise_for_status()
    return answer.text


def per_worker(directory: str | Path, name: str, **labels: str) -> dict[int, float]:
    """``name``'s counter value per worker pid, from the workers' own files."""
    shares: dict[int, float] = {}
    for path in Path(directory).glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for metric in MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if sample.name == name and _matches(sample.labels, labels):
                    shares[pid] = shares.get(pid, 0.0) + sample.value
    return shares
