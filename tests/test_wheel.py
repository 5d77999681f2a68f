"""The built wheel is complete: installed apart from the source tree and used from another directory,
it finds its catalog, its web page and its model card template, and answers a request."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CLIENT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from fastapi.testclient import TestClient
    import serving, training
    from serving.app import create_app
    from serving.settings import Settings
    from training.catalog import DEFAULT_CATALOG_DIR, Catalog
    from training.trainer import MODEL_CARD_TEMPLATE

    settings = Settings(model_dir=sys.argv[1], threads=1, allowed_hosts=["testserver"], database_url="sqlite:///kept/store.db")
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/predict", json={"text": "Japan demanded that North Korea halt its missile launches.",
                                                  "pairs": [{"party": "Japan", "issue": "missile launches"}]})
        page = client.get("/")
        kept = client.post("/v1/predict", json={"text": "Russia offered talks.", "pairs": [], "store": True})
    print(json.dumps({
        "files": [training.__file__, serving.__file__],
        "catalog": str(DEFAULT_CATALOG_DIR), "parties": len(Catalog.load().parties),
        "template": MODEL_CARD_TEMPLATE.exists(),
        "status": answer.status_code, "stance": answer.json()["results"][0]["stance"]["label"],
        "page": page.status_code,
        "document_id": kept.json()["document_id"],
    }))
    """
)


def test_the_installed_wheel_serves_a_request_from_another_directory(tmp_path, tiny_model):
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(wheels)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("stanceline-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", CLIENT, str(tiny_model)], cwd=elsewhere, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert all(path.startswith(str(site)) for path in result["files"]), "imported the wheel, not the source tree"
    assert result["catalog"].startswith(str(site)) and result["parties"] > 100
    assert result["template"]
    assert (result["status"], result["stance"], result["page"]) == (200, "pressure", 200)
    assert result["document_id"] == 1, "the wheel carries the database migrations"
    assert (elsewhere / "kept" / "store.db").exists()
