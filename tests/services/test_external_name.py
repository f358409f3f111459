"""ExternalName services: a DNS name in place of a cluster IP, from the CLI and manifests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import last_seq, skyctl


def test_create_get_describe_and_apply_back(url: str, ns: str, tmp_path: Path) -> None:
    made = skyctl(
        "create", "service", "db", "-n", ns, "-t", "ExternalName",
        "--external-name", "DB.Example.COM", url=url,
    )  # fmt: skip
    assert made.code == 0, made.err
    got = skyctl("get", "svc", "db", "-n", ns, url=url)
    assert got.lines[1].split()[:4] == ["db", "ExternalName", "<none>", "db.example.com"]
    described = skyctl("describe", "svc", "db", "-n", ns, url=url).lines
    assert [line.split()[-1] for line in described if line.startswith("External Name:")] == [
        "db.example.com"
    ]
    document = yaml.safe_load(skyctl("get", "svc", "db", "-n", ns, "-o", "yaml", url=url).out)
    assert document["spec"]["externalName"] == "db.example.com"
    assert "clusterIP" not in document["spec"]
    (tmp_path / "db.yaml").write_text(yaml.safe_dump(document))
    before = last_seq(url)
    assert skyctl("apply", "-f", str(tmp_path / "db.yaml"), url=url).lines == [
        "service/db unchanged"
    ]
    document["spec"]["externalName"] = "db2.example.com"
    (tmp_path / "db.yaml").write_text(yaml.safe_dump(document))
    assert skyctl("apply", "-f", str(tmp_path / "db.yaml"), url=url).lines == [
        "service/db configured"
    ]
    assert last_seq(url) == before + 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-t", "ExternalName"], "--external-name"),
        (["--external-name", "db.example.com"], "db.example.com"),
        (["-t", "ExternalName", "--external-name", "bad_name"], "bad_name"),
        (["-t", "ExternalName", "--external-name", "a" * 64 + ".com"], "a" * 64),
        (
            ["-t", "ExternalName", "--external-name", "x.com", "--cluster-ip", "10.96.0.9"],
            "cluster IP",
        ),
    ],
)
def test_bad_external_names_are_one_line_and_write_nothing(
    url: str, ns: str, args: list[str], named: str
) -> None:
    before = last_seq(url)
    result = skyctl("create", "service", "bad", "-n", ns, *args, url=url)
    assert result.code == 2, result
    lines = result.err.splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in result.err, result.err
    assert last_seq(url) == before


def test_a_manifest_names_spec_external_name(url: str, ns: str, tmp_path: Path) -> None:
    for spec, named in (
        ({"type": "ExternalName"}, "spec.externalName"),
        ({"type": "ExternalName", "externalName": "-bad-"}, "spec.externalName: '-bad-'"),
        ({"type": "ClusterIP", "externalName": "x.com"}, "spec.externalName: 'x.com'"),
    ):
        document = {
            "apiVersion": "skyflow.io/v1",
            "kind": "Service",
            "metadata": {"name": "m", "namespace": ns},
            "spec": spec,
        }
        (tmp_path / "m.yaml").write_text(yaml.safe_dump(document))
        before = last_seq(url)
        result = skyctl("apply", "-f", str(tmp_path / "m.yaml"), url=url)
        assert result.code == 2 and named in result.err, result.err
        assert last_seq(url) == before
